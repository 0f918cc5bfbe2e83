"""Through a real server: what a run reports — the progress it reached (also when it failed
or was canceled), an end-of-stream message on the WebSocket, and its ``execution`` metadata."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
import websockets

from tests.e2e.server import Server

pytestmark = pytest.mark.slow

FAILS_AT_THE_THIRD = """metadata: {name: Fails at the third}
nodes:
  one: {type: set, params: {values: {a: 1}}, next: {default: two}}
  two: {type: set, params: {values: {b: 2}}, next: {default: three}}
  three: {type: fail, params: {message: "no luck"}}
"""

NAPS = """metadata: {name: Naps}
nodes:
  one: {type: set, params: {values: {a: 1}}, next: {default: nap}}
  nap: {type: delay, params: {duration: 60}}
"""

QUICK = """metadata: {name: Quick}
nodes:
  only: {type: set, params: {values: {a: 1}}}
"""


async def _start(client: httpx.AsyncClient, yaml: str, *, wait: str | None = None) -> Any:
    created = await client.post(
        "/api/v1/flows", content=yaml, headers={"content-type": "application/yaml"}
    )
    assert created.status_code == 201, created.text
    params = {"wait": wait} if wait else None
    started = await client.post(
        f"/api/v1/flows/{created.json()['id']}/run", json={"input": {}}, params=params
    )
    assert started.status_code in (200, 202), started.text
    return started.json()


async def _get(client: httpx.AsyncClient, execution_id: str) -> dict[str, Any]:
    response = await client.get(f"/api/v1/executions/{execution_id}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_a_failed_run_keeps_the_progress_it_reached(client: httpx.AsyncClient) -> None:
    started = await _start(client, FAILS_AT_THE_THIRD, wait="20s")
    execution = await _get(client, started.get("execution_id") or started["id"])
    assert execution["status"] == "failed"
    assert execution["progress"] == pytest.approx(2 / 3)  # one and two done, of three nodes


async def test_a_canceled_run_keeps_the_progress_it_reached(
    server: Server, token: str, client: httpx.AsyncClient
) -> None:
    async with websockets.connect(f"{server.ws_url}?token={token}") as ws:
        execution_id = (await _start(client, NAPS))["execution_id"]
        await ws.send(json.dumps({"type": "subscribe", "execution_id": execution_id}))
        async with asyncio.timeout(20):  # hang guard: the first node takes milliseconds
            while True:  # until the second node (the long nap) has started
                data = json.loads(await ws.recv()).get("data", {})
                if (data.get("node_id"), data.get("state")) == ("nap", "started"):
                    break
    canceled = await client.post(f"/api/v1/executions/{execution_id}/cancel")
    assert canceled.status_code == 200, canceled.text
    assert canceled.json()["status"] == "canceled"
    assert canceled.json()["progress"] == pytest.approx(0.5)  # one of two nodes done
    assert (await _get(client, execution_id))["progress"] == pytest.approx(0.5)


async def _until_end(ws: Any) -> list[dict[str, Any]]:
    """Every message up to and including the end-of-stream one."""
    seen: list[dict[str, Any]] = []
    async with asyncio.timeout(20):  # hang guard only
        while not seen or seen[-1]["type"] != "end":
            seen.append(json.loads(await ws.recv()))
    return seen


@pytest.mark.parametrize(("yaml", "status"), [(QUICK, "completed"), (FAILS_AT_THE_THIRD, "failed")])
async def test_websocket_says_the_stream_ended_after_the_final_event(
    server: Server, token: str, client: httpx.AsyncClient, yaml: str, status: str
) -> None:
    async with websockets.connect(f"{server.ws_url}?token={token}") as ws:
        execution_id = (await _start(client, yaml))["execution_id"]
        await ws.send(json.dumps({"type": "subscribe", "execution_id": execution_id}))
        messages = await _until_end(ws)
        # The connection stays usable after the end of one run's stream.
        await ws.send(json.dumps({"type": "ping"}))
        assert json.loads(await ws.recv()) == {"type": "pong"}
    assert messages[0] == {"type": "subscribed", "execution_id": execution_id}
    assert messages[-2]["data"]["status"] == status  # the final event, then the end
    assert messages[-1] == {"type": "end", "execution_id": execution_id, "status": status}


async def test_subscribing_to_a_finished_run_replays_it_then_ends(
    server: Server, token: str, client: httpx.AsyncClient
) -> None:
    execution_id = (await _start(client, QUICK, wait="20s"))["id"]
    async with websockets.connect(f"{server.ws_url}?token={token}") as ws:
        await ws.send(json.dumps({"type": "subscribe", "execution_id": execution_id}))
        messages = await _until_end(ws)
    assert messages[-2]["type"] == "complete"
    assert messages[-1] == {"type": "end", "execution_id": execution_id, "status": "completed"}


async def test_execution_metadata_has_the_documented_keys(client: httpx.AsyncClient) -> None:
    yaml = """metadata: {name: Meta}
nodes:
  show: {type: set, params: {values: {execution: "${execution}"}}}
"""
    done = await _start(client, yaml, wait="20s")
    assert done["status"] == "completed", done
    meta = done["output"]["execution"]
    assert meta == {
        "id": done["id"],
        "flow_id": done["flow_id"],
        "flow_version": done["flow_version"],
        "flow": "Meta",
    }


async def test_a_run_routed_to_the_reserved_end_target_completes(
    client: httpx.AsyncClient,
) -> None:
    yaml = """metadata: {name: Ends early}
nodes:
  complain: {type: fail, params: {message: "not ok"}, next: {error: END, default: never}}
  never: {type: log, params: {message: x}}
"""
    done = await _start(client, yaml, wait="20s")
    assert done["status"] == "completed", done
    assert done["output"] is None
    assert done["progress"] == 1.0
