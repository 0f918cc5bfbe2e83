"""Plugins through a real ``flowrunner serve``: a module dropped into the plugins folder is
listed and runnable without a restart; an edit serves new runs while a run in flight keeps
its version; a broken edit is reported while the last good version serves; a disabled plugin's
types fail validation while its runs in flight finish, and a disable outlives a restart; an
installed package's types are listed and run; a PocketFlow node runs unchanged."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import HANG_GUARD
from tests.e2e.server import Server, create_flow, start_run

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "plugins"

MODULE = """
import time
from pathlib import Path
from flowrunner.plugins import FunctionNodeType, Plugin

GATE = Path({gate!r})

def shout(call):
    if call.params.get("hold"):
        # Says it started, then holds the run until the test opens the gate (bounded).
        GATE.with_name("started").touch()
        for _ in range(6000):
            if GATE.exists():
                break
            time.sleep(0.01)
    return "{tag}:" + str(call.params["text"]).upper()

plugin = Plugin(
    name="shouting",
    version="{tag}",
    description="Shouts.",
    author="tests",
    node_types=[
        FunctionNodeType(
            name="e2e.shout",
            description="Upper-cases params.text.",
            work=shout,
            blocking=True,
            params_schema={{
                "type": "object",
                "properties": {{"text": {{"type": "string"}}, "hold": {{"type": "boolean"}}}},
                "required": ["text"],
            }},
        )
    ],
)
"""

SHOUT_FLOW = """metadata: {name: Shout %s}
nodes:
  loud: {type: e2e.shout, params: {text: "${input.text}", hold: %s}}
"""


def install_example_package() -> None:
    """The example plugin package, installed (not editable) into the test venv."""
    try:
        if distribution("flowrunner-acme").version == "1.2.0":
            return
    except PackageNotFoundError:
        pass
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            str(EXAMPLES / "flowrunner-acme"),
        ],
        check=True,
    )


@pytest.fixture(scope="module")
def plugins_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("plugins")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, plugins_dir: Path) -> Iterator[Server]:
    install_example_package()
    with Server(tmp_path_factory.mktemp("e2e-plugins"), plugins_dir=plugins_dir) as running:
        yield running


@pytest.fixture
async def client(server: Server) -> AsyncIterator[httpx.AsyncClient]:
    async with server.client() as http:
        yield http


async def until(check: Callable[[], Awaitable[bool]]) -> None:
    """Polls ``check`` until it holds; only a hang fails (HANG_GUARD), never slowness."""
    async with asyncio.timeout(HANG_GUARD):
        while not await check():  # noqa: ASYNC110 - the state is the server's
            await asyncio.sleep(0.05)


async def plugin(client: httpx.AsyncClient, name: str) -> dict[str, Any] | None:
    answer = await client.get(f"/api/v1/plugins/{name}")
    return answer.json() if answer.status_code == 200 else None


async def finished(client: httpx.AsyncClient, execution_id: str) -> dict[str, Any]:
    """The run once it ended (polled: its status lives in the server's store)."""
    run: dict[str, Any] = {}

    async def ended() -> bool:
        nonlocal run
        run = (await client.get(f"/api/v1/executions/{execution_id}")).json()
        return run["status"] not in ("queued", "running")

    await until(ended)
    return run


async def run_output(client: httpx.AsyncClient, flow_id: str, text: str) -> Any:
    run = await finished(client, await start_run(client, flow_id, {"text": text}))
    assert run["status"] == "completed", run
    return run["output"]


def write(plugins_dir: Path, tag: str, gate: Path) -> None:
    (plugins_dir / "shouting.py").write_text(
        textwrap.dedent(MODULE.format(tag=tag, gate=str(gate)))
    )


async def test_a_folder_plugin_is_loaded_edited_broken_and_disabled_without_restart(
    client: httpx.AsyncClient, plugins_dir: Path, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    write(plugins_dir, "v1", gate)

    async def listed() -> bool:
        types = (await client.get("/api/v1/node-types")).json()["items"]
        return any(t["name"] == "e2e.shout" for t in types)

    await until(listed)
    types = {t["name"]: t for t in (await client.get("/api/v1/node-types")).json()["items"]}
    shout = types["e2e.shout"]
    assert (shout["source"], shout["plugin"], shout["version"]) == ("folder", "shouting", "v1")
    assert shout["blocking"] is True
    assert shout["params_schema"]["required"] == ["text"]
    assert types["log"]["source"] == "builtin"

    quick = await create_flow(client, SHOUT_FLOW % ("quick", "false"))
    held = await create_flow(client, SHOUT_FLOW % ("held", "true"))
    assert await run_output(client, quick, "hi") == "v1:HI"

    # A run in flight on v1 while v2 arrives: it finishes on v1, new runs use v2.
    in_flight = await start_run(client, held, {"text": "slow"})

    async def running() -> bool:
        return (tmp_path / "started").exists()

    await until(running)
    write(plugins_dir, "v2", gate)

    async def at_v2() -> bool:
        found = await plugin(client, "shouting")
        return found is not None and found["version"] == "v2"

    await until(at_v2)
    assert await run_output(client, quick, "hi") == "v2:HI"
    gate.touch()
    assert (await finished(client, in_flight))["output"] == "v1:SLOW"

    # A broken edit: reported with its file and line; v2 keeps serving.
    (plugins_dir / "shouting.py").write_text("plugin = (\n")

    async def broken() -> bool:
        found = await plugin(client, "shouting")
        return found is not None and found["status"] == "degraded"

    await until(broken)
    found = await plugin(client, "shouting")
    assert found is not None
    assert "shouting.py:1: failed to import: SyntaxError" in found["error"], found
    assert "the last good version (v2) serves" in found["error"]
    assert await run_output(client, quick, "still") == "v2:STILL"

    # Disabled: a flow using its type is refused, naming the plugin; enabled again, accepted.
    answer = await client.post("/api/v1/plugins/shouting/disable")
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "disabled"
    refused = await client.post(
        "/api/v1/flows",
        content=SHOUT_FLOW % ("refused", "false"),
        headers={"content-type": "application/yaml"},
    )
    assert refused.status_code == 400, refused.text
    assert "belongs to plugin 'shouting', which is disabled" in refused.text
    assert (await client.post("/api/v1/plugins/shouting/enable")).status_code == 200
    await create_flow(client, SHOUT_FLOW % ("accepted", "false"))

    audit = (await client.get("/api/v1/audit", params={"limit": 200, "scope": "all"})).json()
    audit = audit["items"]
    actions = [r["action"] for r in audit]
    assert {"plugin.reloaded", "plugin.disabled", "plugin.enabled"} <= set(actions), actions


async def test_an_explicit_reload_is_admin_only_and_reports_errors(
    client: httpx.AsyncClient, server: Server, plugins_dir: Path
) -> None:
    (plugins_dir / "nothing.py").write_text("x = 1\n")
    answer = await client.post("/api/v1/plugins/reload")
    assert answer.status_code == 200, answer.text
    assert (
        "defines neither `plugin = Plugin(...)` nor `node_types`"
        in answer.json()["errors"]["nothing"]
    )
    (plugins_dir / "nothing.py").unlink()
    await client.post("/api/v1/plugins/reload")
    assert (await client.get("/api/v1/plugins/nothing")).status_code == 404

    await client.post("/api/v1/accounts", json={"username": "tenant", "password": "tenant-pass-1"})
    async with httpx.AsyncClient(base_url=server.url, auth=("tenant", "tenant-pass-1")) as tenant:
        assert (await tenant.post("/api/v1/plugins/reload")).status_code == 403
        assert (await tenant.post("/api/v1/plugins/acme/disable")).status_code == 403
        assert (await tenant.get("/api/v1/node-types")).status_code == 200


async def test_an_installed_package_plugin_is_listed_and_runs(client: httpx.AsyncClient) -> None:
    acme = await plugin(client, "acme")
    assert acme is not None
    assert (acme["kind"], acme["version"], acme["status"]) == ("package", "1.2.0", "active")
    assert acme["author"] == "ACME Corp. <plugins@acme.example>"
    assert acme["node_types"] == ["acme.text.slug", "acme.text.classify"]
    types = {t["name"]: t for t in (await client.get("/api/v1/node-types")).json()["items"]}
    assert types["acme.text.classify"]["actions"] == ["long"]
    flow = await create_flow(
        client,
        """metadata: {name: Acme}
nodes:
  size: {type: acme.text.classify, params: {text: "${input.text}", limit: 5}, next: {long: slug}}
  slug: {type: acme.text.slug, params: {text: "Hello Plugin World"}}
""",
    )
    assert await run_output(client, flow, "Hello Plugin World") == "hello-plugin-world"


async def test_a_pocketflow_node_runs_unchanged(
    client: httpx.AsyncClient, plugins_dir: Path
) -> None:
    source = (EXAMPLES / "folder" / "pocketflow_summary.py").read_text()
    (plugins_dir / "pocketflow_summary.py").write_text(source)
    await client.post("/api/v1/plugins/reload")
    flow = await create_flow(
        client,
        """metadata: {name: Pocket}
nodes:
  seed: {type: set, params: {values: {text: "${input.text}"}}, next: {default: shout}}
  shout: {type: local.shout}
  after: {type: set, params: {values: {seen: "${shared.shouted}"}}}
""".replace("  shout: {type: local.shout}", "  shout: {type: local.shout, next: {default: after}}"),
    )
    run = await finished(client, await start_run(client, flow, {"text": "pocket"}))
    assert run["status"] == "completed", run
    assert run["output"]["seen"] == "POCKET!"


async def test_a_late_folder_is_watched_a_disable_spares_runs_in_flight_and_outlives_a_restart(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "made-later" / "plugins"
    data = tmp_path / "data"
    data.mkdir()
    with Server(data, plugins_dir=folder) as running:
        async with running.client() as http:
            assert await plugin(http, "shouting") is None
            folder.mkdir(parents=True)
            write(folder, "v1", tmp_path / "gate")

            async def loaded() -> bool:
                found = await plugin(http, "shouting")
                return found is not None and found["status"] == "active"

            await until(loaded)
            flow = await create_flow(http, SHOUT_FLOW % ("later", "false"))
            held = await create_flow(http, SHOUT_FLOW % ("held later", "true"))
            assert await run_output(http, flow, "late") == "v1:LATE"
            # Disabled while a run of it is in flight: that run is not killed, it finishes.
            in_flight = await start_run(http, held, {"text": "going"})

            async def started() -> bool:
                return (tmp_path / "started").exists()

            await until(started)
            disabled = await http.post("/api/v1/plugins/shouting/disable")
            assert disabled.status_code == 200, disabled.text
            (tmp_path / "gate").touch()
            finished_run = await finished(http, in_flight)
            assert (finished_run["status"], finished_run["output"]) == ("completed", "v1:GOING")

        running.stop()
        running.start()
        async with running.client() as http:
            found = await plugin(http, "shouting")
            assert found is not None
            assert (found["status"], found["enabled"]) == ("disabled", False)
            run = await finished(http, await start_run(http, flow, {"text": "x"}))
            assert run["status"] == "failed"
            assert "belongs to plugin 'shouting', which is disabled" in str(run["error"]), run
            assert (await http.post("/api/v1/plugins/shouting/enable")).status_code == 200

        running.stop()
        running.start()
        async with running.client() as http:
            found = await plugin(http, "shouting")
            assert found is not None
            assert found["status"] == "active"
            assert await run_output(http, flow, "back") == "v1:BACK"
