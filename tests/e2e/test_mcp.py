"""The mcp node through a real ``flowrunner serve``: a stdio server the admin allowed and an
HTTP server on 127.0.0.1, a secret header masked in the database, the log and the API,
cancellation through the API ending the stdio server's process, and a server with default
settings refusing to start a stdio command."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import HANG_GUARD
from tests.e2e.leaks import database_bytes, leaks
from tests.e2e.server import Server, create_flow, finished_run, start_run
from tests.nodes.mcp.conftest import ALLOWED, http_server, process_gone, stdio_params

pytestmark = pytest.mark.slow

SECRET = 'mcp-s3cret"&/+?= header'  # JSON- and URL-special characters


@pytest.fixture(scope="module")
def mcp_url() -> Iterator[str]:
    with http_server() as url:
        yield url


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with Server(
        tmp_path_factory.mktemp("mcp"), http_allow_private="true", mcp_stdio_commands=ALLOWED
    ) as running:
        yield running


@pytest.fixture
async def admin(server: Server) -> AsyncIterator[httpx.AsyncClient]:
    async with server.client() as client:
        yield client


def one(params: str) -> str:
    return f"metadata: {{name: M}}\nnodes:\n  call:\n    type: mcp\n    params: {{{params}}}\n"


async def run_flow(client: httpx.AsyncClient, flow: str, run_input: Any = None) -> dict[str, Any]:
    flow_id = await create_flow(client, flow)
    return await finished_run(client, await start_run(client, flow_id, run_input or {}))


async def test_a_run_calls_a_stdio_server_the_admin_allowed(admin: httpx.AsyncClient) -> None:
    run = await run_flow(
        admin, one(stdio_params('tool: add, arguments: {a: "${input.a}", b: 2}')), {"a": 40}
    )
    assert run["status"] == "completed", run
    assert run["output"]["structured"] == {"result": 42}


async def test_a_secret_header_reaches_the_server_and_nowhere_else(
    server: Server, admin: httpx.AsyncClient, mcp_url: str
) -> None:
    saved = await admin.post("/api/v1/accounts/me/secrets", json={"key": "M", "value": SECRET})
    assert saved.status_code == 201, saved.text
    flow = one(
        f'url: "{mcp_url}", headers: {{X-Token: "${{secrets.M}}"}}, '
        "tool: header, arguments: {name: x-token}"
    )
    run = await run_flow(admin, flow)
    assert run["status"] == "completed", run
    assert run["output"]["text"] == "***"  # the server got it; the run shows it masked
    answers = [run]
    execution_id = run["id"]
    for path in (f"/api/v1/executions/{execution_id}", f"/api/v1/executions/{execution_id}/logs"):
        response = await admin.get(path)
        assert response.status_code == 200
        answers.append(response.json())
    assert leaks(json.dumps(answers).encode(), SECRET) == []
    assert leaks(database_bytes(server), SECRET) == []
    assert leaks(server.log.read_bytes(), SECRET) == []


async def test_cancelling_a_run_through_the_api_ends_the_stdio_server(
    admin: httpx.AsyncClient, tmp_path: Path
) -> None:
    flow = one(
        stdio_params(
            f'env: {{MCP_MARK_DIR: "{tmp_path}"}}, tool: sleep, arguments: {{seconds: 600}}'
        )
    )
    execution_id = await start_run(admin, await create_flow(admin, flow), {})
    async with asyncio.timeout(HANG_GUARD):  # hang guard only
        while not (tmp_path / "sleeping").exists():  # noqa: ASYNC110 - another process's file
            await asyncio.sleep(0.02)
    pid = int((tmp_path / "pid").read_text())
    assert not process_gone(pid)
    canceled = await admin.post(f"/api/v1/executions/{execution_id}/cancel")
    assert canceled.status_code == 200, canceled.text
    assert (await finished_run(admin, execution_id))["status"] == "canceled"
    async with asyncio.timeout(HANG_GUARD):  # hang guard only
        while not process_gone(pid):  # noqa: ASYNC110 - the server reaps its child
            await asyncio.sleep(0.02)


async def test_a_server_with_default_settings_starts_no_stdio_command(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    default = Server(tmp_path_factory.mktemp("default"))
    default.env.pop("FLOWRUNNER_MCP_STDIO_COMMANDS", None)
    with default:
        async with default.client() as client:
            run = await run_flow(
                client, one(stdio_params(f'env: {{MCP_MARK_DIR: "{tmp_path}"}}, tool: pid'))
            )
    assert run["status"] == "failed", run
    assert run["error"]["node_id"] == "call"
    assert "not on the server's allow-list" in run["error"]["message"]
    assert "FLOWRUNNER_MCP_STDIO_COMMANDS" in run["error"]["message"]
    assert not (tmp_path / "pid").exists()  # nothing was started
