"""On-failure flows through a real ``flowrunner serve``: a run that ends ``failed`` starts the
flow named by its ``metadata.on_failure`` (or the account's default) as a child run, with the
failure's details as input; handled failures start nothing, and it never recurses."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import HANG_GUARD
from tests.e2e.server import Server

pytestmark = pytest.mark.slow

YAML = {"content-type": "application/yaml"}

ALARM = """metadata: {name: Alarm}
nodes:
  note:
    type: set
    params:
      values:
        failed_run: "${input.execution.id}"
        flow: "${input.flow.name}"
        node: "${input.node_id}"
        message: "${input.error.message}"
        order: "${input.input.order}"
"""
EXPLODES = """metadata:
  name: Checkout
  on_failure: {flow: Alarm}
nodes:
  explode: {type: fail, params: {message: "card declined for ${input.order}"}}
"""
HANDLED = """metadata:
  name: Careful
  on_failure: {flow: Alarm}
nodes:
  explode: {type: fail, params: {message: boom}, next: {error: recover}}
  recover: {type: set, params: {values: {recovered: true}}}
"""
SELF_FAILING = """metadata:
  name: Ouroboros
  on_failure: {flow: Ouroboros}
nodes:
  explode: {type: fail, params: {message: again}}
"""
PLAIN_FAILURE = """metadata: {name: Plain}
nodes:
  explode: {type: fail, params: {message: plain}}
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with Server(tmp_path_factory.mktemp("on-failure")) as running:
        yield running


@pytest.fixture
async def client(server: Server) -> AsyncIterator[httpx.AsyncClient]:
    async with server.client() as opened:
        yield opened


async def _save(client: httpx.AsyncClient, yaml: str) -> str:
    response = await client.post("/api/v1/flows", content=yaml, headers=YAML)
    assert response.status_code == 201, response.text
    flow_id: str = response.json()["id"]
    return flow_id


async def _run(client: httpx.AsyncClient, flow_id: str, run_input: Any) -> dict[str, Any]:
    """Runs and waits for the end: the server answers once the run's task is over, which
    includes starting its on-failure run."""
    response = await client.post(
        f"/api/v1/flows/{flow_id}/run", params={"wait": "60s"}, json={"input": run_input}
    )
    assert response.status_code == 200, response.text
    run: dict[str, Any] = response.json()
    return run


async def _finished(client: httpx.AsyncClient, execution_id: str) -> dict[str, Any]:
    """The run once it ended (it runs on its own, in the server's executor)."""
    async with asyncio.timeout(HANG_GUARD):
        while True:
            run: dict[str, Any] = (await client.get(f"/api/v1/executions/{execution_id}")).json()
            if run["status"] in ("completed", "failed", "canceled"):
                return run
            await asyncio.sleep(0.05)


async def _children(client: httpx.AsyncClient, execution_id: str) -> list[dict[str, Any]]:
    body = (await client.get(f"/api/v1/executions/{execution_id}/children")).json()
    items: list[dict[str, Any]] = body["items"]
    return items


async def test_a_failed_run_starts_its_on_failure_flow_as_a_child_with_the_details(
    client: httpx.AsyncClient,
) -> None:
    alarm = await _save(client, ALARM)
    checkout = await _save(client, EXPLODES)
    failed = await _run(client, checkout, {"order": 42})
    assert failed["status"] == "failed"
    [child] = await _children(client, failed["id"])
    assert child["flow_id"] == alarm
    assert child["parent_id"] == failed["id"]
    done = await _finished(client, child["id"])
    assert done["status"] == "completed", done
    assert done["output"] == {
        "failed_run": failed["id"],
        "flow": "Checkout",
        "node": "explode",
        "message": failed["error"]["message"],
        "order": 42,
    }
    assert "card declined for 42" in failed["error"]["message"]
    assert done["input"]["execution"]["status"] == "failed"
    assert done["input"]["flow"] == {"id": checkout, "name": "Checkout", "version": 1}
    # The failed run's history says what was started.
    logs = (await client.get(f"/api/v1/executions/{failed['id']}/logs")).text
    assert child["id"] in logs


async def test_a_failure_handled_by_an_error_edge_starts_nothing(
    client: httpx.AsyncClient,
) -> None:
    run = await _run(client, await _save(client, HANDLED), {})
    assert run["status"] == "completed"
    assert await _children(client, run["id"]) == []


async def test_a_failing_on_failure_run_starts_no_other(client: httpx.AsyncClient) -> None:
    failed = await _run(client, await _save(client, SELF_FAILING), {})
    assert failed["status"] == "failed"
    [child] = await _children(client, failed["id"])  # itself, once
    done = await _finished(client, child["id"])
    assert done["status"] == "failed"
    assert done["input"]["error"]["message"] == failed["error"]["message"]
    assert await _children(client, child["id"]) == []


async def test_the_account_default_on_failure_flow_is_set_over_the_api(
    client: httpx.AsyncClient,
) -> None:
    plain = await _save(client, PLAIN_FAILURE)
    assert (await client.get("/api/v1/accounts/me/settings")).json() == {"on_failure": None}
    nope = {"on_failure": {"flow": "Nope"}}
    unknown = await client.put("/api/v1/accounts/me/settings", json=nope)
    assert unknown.status_code == 404, unknown.text

    first = await _run(client, plain, {})
    assert await _children(client, first["id"]) == []  # no default yet

    alarm = await _save(client, ALARM.replace("name: Alarm", "name: Default alarm"))
    saved = await client.put(
        "/api/v1/accounts/me/settings", json={"on_failure": {"flow": "Default alarm"}}
    )
    assert saved.status_code == 200, saved.text
    assert saved.json() == {"on_failure": {"flow": "Default alarm"}}
    assert (await client.get("/api/v1/accounts/me/settings")).json() == saved.json()
    second = await _run(client, plain, {})
    [child] = await _children(client, second["id"])
    assert child["flow_id"] == alarm
    assert (await _finished(client, child["id"]))["output"]["message"].endswith("plain")

    # The flow's own metadata.on_failure wins over the default.
    own = await _run(client, await _save(client, EXPLODES.replace("Checkout", "Shop")), {})
    [child] = await _children(client, own["id"])
    assert child["flow_id"] != alarm

    cleared = await client.put("/api/v1/accounts/me/settings", json={"on_failure": None})
    assert cleared.json() == {"on_failure": None}
    third = await _run(client, plain, {})
    assert await _children(client, third["id"]) == []
