"""Through a real server: run and follow over WebSocket, failures, cancel, idempotent
retries of the run request, and replay after a reconnect."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
import websockets

from tests.e2e.flows import STEPS
from tests.e2e.server import Server, create_flow, start_run

pytestmark = pytest.mark.slow


FAILING = """metadata: {name: Failing}
nodes:
  ok: {type: set, params: {values: {a: 1}}, next: {default: boom}}
  boom: {type: fail, params: {message: "no luck"}}
"""


async def _events(
    ws: Any, *, until_final: bool = True, count: int | None = None
) -> list[dict[str, Any]]:
    """Run events received on ``ws`` until the final one (or ``count`` of them)."""
    seen: list[dict[str, Any]] = []
    async with asyncio.timeout(20):
        while True:
            message = json.loads(await ws.recv())
            if "seq" not in message:
                assert message["type"] in ("subscribed", "pong"), message
                continue
            seen.append(message)
            if count is not None and len(seen) >= count:
                return seen
            status = message["data"].get("status")
            if until_final and status in ("completed", "failed", "canceled"):
                return seen


async def test_run_followed_over_websocket_completes_with_outputs(
    server: Server, token: str, client: httpx.AsyncClient
) -> None:
    flow_id = await create_flow(client, STEPS)
    headers = {"Authorization": f"Bearer {token}"}
    async with websockets.connect(server.ws_url, additional_headers=headers) as ws:
        await ws.send(json.dumps({"type": "ping"}))
        assert json.loads(await ws.recv()) == {"type": "pong"}
        execution_id = await start_run(client, flow_id, {"name": "Ada", "nap": 0.2})
        await ws.send(json.dumps({"type": "subscribe", "execution_id": execution_id}))
        events = await _events(ws)
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert events[0]["type"] == "status"
    assert events[-1]["type"] == "complete"
    assert events[-1]["data"]["output"] == {"done": True}
    assert [e["data"]["message"] for e in events if e["type"] == "log"] == ["hi Ada"]
    finished = [e["data"]["node_id"] for e in events if e["data"].get("state") == "finished"]
    assert finished == ["greet", "say", "nap", "done"]


async def test_failure_arrives_as_an_error_naming_the_node(
    server: Server, token: str, client: httpx.AsyncClient
) -> None:
    flow_id = await create_flow(client, FAILING)
    async with websockets.connect(f"{server.ws_url}?token={token}") as ws:
        execution_id = await start_run(client, flow_id, {})
        await ws.send(json.dumps({"type": "subscribe", "execution_id": execution_id}))
        events = await _events(ws)
    assert events[-1]["type"] == "error"
    assert events[-1]["data"]["error"]["node_id"] == "boom"


async def test_cancel_mid_run_stops_it(
    server: Server, token: str, client: httpx.AsyncClient
) -> None:
    flow_id = await create_flow(client, STEPS)
    async with websockets.connect(server.ws_url) as ws:
        await ws.send(json.dumps({"type": "auth", "token": token}))
        execution_id = await start_run(client, flow_id, {"name": "x", "nap": 60})
        await ws.send(json.dumps({"type": "subscribe", "execution_id": execution_id}))
        started = await _events(ws, count=6)  # status, greet x2, say x2 + log... nap started
        assert started[-1]["data"].get("node_id") in ("say", "nap")
        canceled = await client.post(f"/api/v1/executions/{execution_id}/cancel")
        assert canceled.json()["status"] == "canceled"
        rest = await _events(ws)
    assert rest[-1]["data"] == {"status": "canceled"}
    assert ("nap", "canceled") in [(e["data"].get("node_id"), e["data"].get("state")) for e in rest]


async def test_a_retried_run_request_with_the_same_key_starts_one_run(
    client: httpx.AsyncClient,
) -> None:
    flow_id = await create_flow(client, STEPS)
    key = {"Idempotency-Key": "e2e-once"}
    body = {"input": {"name": "y", "nap": 0}}
    answers = await asyncio.gather(
        *[client.post(f"/api/v1/flows/{flow_id}/run", json=body, headers=key) for _ in range(5)]
    )
    assert {r.json()["execution_id"] for r in answers} == {answers[0].json()["execution_id"]}
    listed = await client.get("/api/v1/executions", params={"flow_id": flow_id})
    assert len(listed.json()["items"]) == 1


async def test_replay_after_reconnect_has_no_gap_and_no_duplicate(
    server: Server, token: str, client: httpx.AsyncClient
) -> None:
    flow_id = await create_flow(client, STEPS)
    headers = {"Authorization": f"Bearer {token}"}
    execution_id = await start_run(client, flow_id, {"name": "z", "nap": 0.8})
    async with websockets.connect(server.ws_url, additional_headers=headers) as ws:
        await ws.send(json.dumps({"type": "subscribe", "execution_id": execution_id}))
        before = await _events(ws, count=3)
    # Disconnected while the run goes on; reconnect and ask for what came after.
    await asyncio.sleep(0.3)
    async with websockets.connect(server.ws_url, additional_headers=headers) as ws:
        await ws.send(
            json.dumps(
                {"type": "subscribe", "execution_id": execution_id, "after_seq": before[-1]["seq"]}
            )
        )
        after = await _events(ws)
    seqs = [e["seq"] for e in before + after]
    assert seqs == list(range(1, len(seqs) + 1))
    assert after[-1]["type"] == "complete"


async def test_another_account_cannot_subscribe(
    server: Server, token: str, client: httpx.AsyncClient
) -> None:
    flow_id = await create_flow(client, STEPS)
    execution_id = await start_run(client, flow_id, {"name": "q", "nap": 0})
    created = await client.post(
        "/api/v1/accounts", json={"username": "mallory", "password": "password-123"}
    )
    assert created.status_code == 201, created.text
    login = await client.post(
        "/api/v1/login", json={"username": "mallory", "password": "password-123"}
    )
    other = login.json()["token"]
    async with websockets.connect(f"{server.ws_url}?token={other}") as ws:
        for message in (
            {"type": "subscribe", "execution_id": execution_id},
            {"type": "subscribe", "flow_id": flow_id},
        ):
            await ws.send(json.dumps(message))
            answer = json.loads(await ws.recv())
            assert answer["type"] == "error"
            assert answer["error"]["code"] == "not_found"
    async with websockets.connect(f"{server.ws_url}?token=frt_not-a-token") as ws:
        refused = json.loads(await ws.recv())
        assert refused["error"]["code"] == "unauthenticated"
