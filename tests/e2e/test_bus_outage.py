"""Through a real server whose event bus is a Redis of the test's own, paused or stopped:
runs go on, followers fall back to the store, and live delivery comes back with Redis."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import websockets

from tests.e2e.flows import STEPS
from tests.e2e.server import Server, create_flow, start_run
from tests.redis_server import RedisServer, redis_server

pytestmark = pytest.mark.slow

FINAL = ("completed", "failed", "canceled")


@pytest.fixture(scope="module")
def redis() -> Iterator[RedisServer]:
    with redis_server() as server:
        yield server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, redis: RedisServer) -> Iterator[Server]:
    # A short bound on Redis calls, so that a hung Redis is noticed soon.
    with Server(
        tmp_path_factory.mktemp("bus"),
        event_bus_url=redis.url,
        event_bus_timeout_seconds=0.5,
        # Their naps keep a node running; durable waits have servers of their own
        # (tests/e2e/test_waiting*.py).
        durable_wait_threshold_seconds=3600,
    ) as running:
        yield running


async def _bus(client: httpx.AsyncClient) -> dict[str, Any]:
    health = (await client.get("/healthz")).json()
    bus: dict[str, Any] = health["event_bus"]
    return bus


async def _bus_until(client: httpx.AsyncClient, holds: Any) -> dict[str, Any]:
    """``/healthz``'s bus report once ``holds(report)`` (a hang guard, not a deadline)."""
    async with asyncio.timeout(60):
        while not holds(bus := await _bus(client)):  # noqa: ASYNC110 - another process
            await asyncio.sleep(0.1)
    return bus


async def _ws_events(ws: Any, until: int = 1) -> dict[str, list[dict[str, Any]]]:
    """Events by subscription ("run" or "flow") until ``until`` of them saw a final status."""
    seen: dict[str, list[dict[str, Any]]] = {"run": [], "flow": []}
    ended = 0
    async with asyncio.timeout(60):
        while ended < until:
            message = json.loads(await ws.recv())
            if "seq" not in message:
                assert message["type"] == "subscribed", message
                continue
            seen["flow" if "flow_id" in message else "run"].append(message)
            ended += message["data"].get("status") in FINAL
    return seen


async def _sse_events(client: httpx.AsyncClient, execution_id: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    async with (
        asyncio.timeout(60),
        client.stream("GET", f"/api/v1/executions/{execution_id}/events") as response,
    ):
        assert response.status_code == 200, await response.aread()
        async for line in response.aiter_lines():
            if line.startswith("data: "):
                found.append(json.loads(line.removeprefix("data: ")))
                if found[-1]["data"].get("status") in FINAL:
                    break
    return found


async def test_a_run_completes_while_redis_hangs_and_followers_read_it_from_the_store(
    redis: RedisServer, server: Server, token: str, client: httpx.AsyncClient
) -> None:
    flow_id = await create_flow(client, STEPS)
    dropped_before = (await _bus(client))["dropped_events"]
    redis.pause()
    try:
        execution_id = await start_run(client, flow_id, {"name": "Ada", "nap": 0.2})
        async with websockets.connect(f"{server.ws_url}?token={token}") as ws:
            await ws.send(json.dumps({"type": "subscribe", "execution_id": execution_id}))
            ws_events = (await _ws_events(ws))["run"]
        sse_events = await _sse_events(client, execution_id)
        run = (await client.get(f"/api/v1/executions/{execution_id}")).json()
        # Every live event of the run was dropped, counted, and said so.
        bus = await _bus_until(
            client, lambda b: b["dropped_events"] - dropped_before >= len(ws_events)
        )
    finally:
        redis.resume()
    assert run["status"] == "completed"
    assert [e["seq"] for e in ws_events] == list(range(1, len(ws_events) + 1))
    assert ws_events[-1]["type"] == "complete"
    assert ws_events[-1]["data"]["output"] == {"done": True}
    assert sse_events == ws_events
    assert bus["connected"] is False
    assert bus["dropped_events"] - dropped_before == len(ws_events)
    assert "dropped live events" in server.log.read_text()


async def test_followers_subscribed_while_redis_is_down_go_live_when_it_is_back(
    redis: RedisServer, server: Server, token: str, client: httpx.AsyncClient
) -> None:
    flow_id = await create_flow(client, STEPS)
    redis.stop()
    execution_id = await start_run(client, flow_id, {"name": "Bo", "nap": 600})
    async with websockets.connect(f"{server.ws_url}?token={token}") as ws:
        await ws.send(json.dumps({"type": "subscribe", "execution_id": execution_id}))
        await ws.send(json.dumps({"type": "subscribe", "flow_id": flow_id}))
        # From the store: the run is napping. The flow's followers get live events only.
        before: list[dict[str, Any]] = []
        async with asyncio.timeout(60):
            while ("nap", "started") not in [_node_state(e) for e in before]:
                message = json.loads(await ws.recv())
                if "seq" in message:
                    assert "flow_id" not in message, "no live event while Redis is down"
                    before.append(message)
        redis.start()  # the same port, empty
        # Both subscriptions reconnected (and any other still open).
        await _bus_until(client, lambda b: b["subscriptions_live"] == b["subscriptions"] >= 2)
        canceled = await client.post(f"/api/v1/executions/{execution_id}/cancel")
        assert canceled.json()["status"] == "canceled"
        after = await _ws_events(ws, until=2)
    run = before + after["run"]
    assert [e["seq"] for e in run] == list(range(1, len(run) + 1))
    assert run[-1]["data"] == {"status": "canceled"}
    # The cancel's events reached the flow's follower: live delivery is back.
    live = after["flow"]
    assert ("nap", "canceled") in [_node_state(e) for e in live]
    assert live[-1]["data"] == {"status": "canceled"}
    assert [{k: v for k, v in e.items() if k != "flow_id"} for e in live] == run[-len(live) :]
    assert (await _bus(client))["connected"] is True


def _node_state(event: dict[str, Any]) -> tuple[Any, Any]:
    return event["data"].get("node_id"), event["data"].get("state")


async def test_live_followers_ride_out_a_hung_redis_and_come_back_live(
    redis: RedisServer, server: Server, token: str, client: httpx.AsyncClient
) -> None:
    flow_id = await create_flow(client, STEPS)
    async with websockets.connect(f"{server.ws_url}?token={token}") as ws:
        await ws.send(json.dumps({"type": "subscribe", "flow_id": flow_id}))
        assert json.loads(await ws.recv())["type"] == "subscribed"
        execution_id = await start_run(client, flow_id, {"name": "Cy", "nap": 600})
        await ws.send(json.dumps({"type": "subscribe", "execution_id": execution_id}))
        before: dict[str, list[dict[str, Any]]] = {"run": [], "flow": []}
        async with asyncio.timeout(60):
            while ("nap", "started") not in [_node_state(e) for e in before["run"]]:
                message = json.loads(await ws.recv())
                if "seq" in message:
                    before["flow" if "flow_id" in message else "run"].append(message)
        redis.pause()
        try:
            # The hang is noticed (a PING goes unanswered): both followers poll the store.
            await _bus_until(client, lambda b: b["subscriptions_live"] == 0 < b["subscriptions"])
        finally:
            redis.resume()
        await _bus_until(client, lambda b: b["subscriptions_live"] == b["subscriptions"] >= 2)
        canceled = await client.post(f"/api/v1/executions/{execution_id}/cancel")
        assert canceled.json()["status"] == "canceled"
        after = await _ws_events(ws, until=2)
    run = before["run"] + after["run"]
    assert [e["seq"] for e in run] == list(range(1, len(run) + 1))
    assert run[-1]["data"] == {"status": "canceled"}
    # Live from the first event on (nothing is published while the run naps), back after
    # the hang: the flow's follower, which never reads the store, missed nothing.
    flow = before["flow"] + after["flow"]
    assert [e["seq"] for e in flow] == list(range(flow[0]["seq"], run[-1]["seq"] + 1))
    assert ("nap", "canceled") in [_node_state(e) for e in after["flow"]]
