"""Through a real server, flows in the original flowrunner's format: its
``shared["<kind>_result"]`` keys, and the fork's ``split``/``join`` fan-out and fan-in."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
import websockets

from tests.e2e.server import Server, stored_events

pytestmark = pytest.mark.slow

RESULT_KEYS = """\
metadata: {name: Result keys}
nodes:
  keep:
    type: set
    params: {values: {token: "${secrets.SHOP_TOKEN}", n: "${input.n}"}}
    next: {default: pause}
  pause:
    type: wait
    params: {type: timer, duration: 0}
    next: {default: use}
  use:
    type: set
    params:
      values:
        via_kind: "${shared.timer_result.n}"
        via_result: "${shared.result.n}"
        token_seen: "${shared.timer_result.token}"
"""


async def run_flow(client: httpx.AsyncClient, yaml: str, run_input: Any) -> dict[str, Any]:
    created = await client.post(
        "/api/v1/flows", content=yaml, headers={"content-type": "application/yaml"}
    )
    assert created.status_code == 201, created.text
    started = await client.post(
        f"/api/v1/flows/{created.json()['id']}/run",
        json={"input": run_input},
        params={"wait": "30s"},
    )
    assert started.status_code == 200, started.text
    body: dict[str, Any] = started.json()
    return body


async def test_a_nodes_output_is_also_shared_kind_result_and_secrets_stay_masked(
    server: Server, client: httpx.AsyncClient
) -> None:
    put = await client.put("/api/v1/accounts/me/secrets/SHOP_TOKEN", json={"value": "tok-9f8e7d"})
    assert put.status_code in (200, 201), put.text
    run = await run_flow(client, RESULT_KEYS, {"n": 7})
    assert run["status"] == "completed", run
    assert run["output"]["via_kind"] == 7
    assert run["output"]["via_result"] == 7
    assert run["output"]["token_seen"] != "tok-9f8e7d"
    events = await client.get(f"/api/v1/executions/{run['id']}/events")
    assert events.status_code == 200, events.text
    assert "tok-9f8e7d" not in events.text
    assert "tok-9f8e7d" not in repr(run)
    # Nor in the database: checkpoints of shared (kind keys included) are sealed.
    for path in server.data_dir.rglob("flowrunner.db*"):
        assert b"tok-9f8e7d" not in path.read_bytes(), path


FAN_OUT = """\
metadata: {name: Fan out}
nodes:
  fan:
    type: split
    next: {default: geo, risk: risk}
  geo:
    type: set
    params: {values: {country: "NL-${input.ip}"}}
    next: {default: merge}
  risk:
    type: set
    params: {values: {score: "${input.amount}"}}
    next: {default: merge}
  merge:
    type: join
    params: {format: object}
"""

FAN_OUT_NAPS = """\
metadata: {name: Fan out naps}
nodes:
  fan: {type: split, next: {a: nap_a, b: nap_b}}
  nap_a: {type: delay, params: {duration: 120}, next: {default: merge}}
  nap_b: {type: delay, params: {duration: 120}, next: {default: merge}}
  merge: {type: join}
"""


async def test_split_runs_its_branches_and_join_merges_them(client: httpx.AsyncClient) -> None:
    run = await run_flow(client, FAN_OUT, {"ip": "1.2.3.4", "amount": 150})
    assert run["status"] == "completed", run
    assert run["output"] == {"country": "NL-1.2.3.4", "score": 150}
    events = await stored_events(client, run["id"])
    finished = [e["data"]["node_id"] for e in events if e["data"].get("state") == "finished"]
    # Every branch once (the default edge too), then the split, then the join.
    assert sorted(finished[:2]) == ["geo", "risk"]
    assert finished[2:] == ["fan", "merge"]
    split = next(
        e["data"] for e in events if e["data"].get("node_id") == "fan" and "output" in e["data"]
    )
    assert split["output"] == {"default": {"country": "NL-1.2.3.4"}, "risk": {"score": 150}}
    assert split["next_node"] == "merge"


async def test_cancelling_a_run_cancels_every_running_branch(
    server: Server, token: str, client: httpx.AsyncClient
) -> None:
    created = await client.post(
        "/api/v1/flows", content=FAN_OUT_NAPS, headers={"content-type": "application/yaml"}
    )
    assert created.status_code == 201, created.text
    async with websockets.connect(f"{server.ws_url}?token={token}") as ws:
        started = await client.post(f"/api/v1/flows/{created.json()['id']}/run", json={"input": {}})
        assert started.status_code == 202, started.text
        execution_id = started.json()["execution_id"]
        await ws.send(json.dumps({"type": "subscribe", "execution_id": execution_id}))
        running: set[str] = set()
        async with asyncio.timeout(30):  # hang guard: both naps start within milliseconds
            while running != {"nap_a", "nap_b"}:
                data = json.loads(await ws.recv()).get("data", {})
                if data.get("state") == "started" and data.get("node_id", "").startswith("nap"):
                    running.add(data["node_id"])
    canceled = await client.post(f"/api/v1/executions/{execution_id}/cancel")
    assert canceled.status_code == 200, canceled.text
    assert canceled.json()["status"] == "canceled"
    events = await stored_events(client, execution_id)
    states = {(e["data"].get("node_id"), e["data"].get("state")) for e in events}
    assert {("nap_a", "started"), ("nap_b", "started")} <= states
    assert {("nap_a", "canceled"), ("nap_b", "canceled")} <= states
    assert ("nap_a", "finished") not in states
    assert ("nap_b", "finished") not in states
    assert events[-1]["data"]["status"] == "canceled"
