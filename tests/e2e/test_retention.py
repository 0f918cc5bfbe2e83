"""Retention through the user's path: an account's policy over the API of a real
``flowrunner serve``, the background pruner, and ``flowrunner db prune`` as typed."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.e2e.server import Server, create_flow

pytestmark = pytest.mark.slow

FLOW = """metadata: {name: Pruned}
nodes:
  one: {type: set, params: {values: {n: "${input.n}"}}}
"""


async def run_three(http: httpx.AsyncClient, flow_id: str) -> None:
    for n in range(3):
        answer = await http.post(f"/api/v1/flows/{flow_id}/run?wait=30s", json={"input": {"n": n}})
        assert answer.json()["status"] == "completed", answer.text


async def executions(http: httpx.AsyncClient, flow_id: str) -> list[str]:
    page = await http.get("/api/v1/executions", params={"flow_id": flow_id})
    return [e["id"] for e in page.json()["items"]]


def cli(server: Server, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "flowrunner", *args],
        env=server.env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


async def test_an_accounts_policy_over_the_api_and_db_prune_as_typed(tmp_path: Path) -> None:
    with Server(tmp_path, retention_interval_seconds=3600) as server:
        async with server.client() as http:
            shown = (await http.get("/api/v1/accounts/me/retention")).json()
            assert shown["own"] is None
            assert shown["effective"] == shown["default"]
            bad = await http.put("/api/v1/accounts/me/retention", json={"completed": {"days": -1}})
            assert bad.status_code == 400, bad.text
            policy = {"completed": {"keep_last": 1}}
            put = await http.put("/api/v1/accounts/me/retention", json=policy)
            assert put.status_code == 200, put.text
            assert put.json()["own"]["completed"] == {"days": None, "keep_last": 1}

            flow_id = await create_flow(http, FLOW)
            await run_three(http, flow_id)
            newest = (await executions(http, flow_id))[0]

            assert "would delete 2 run(s) in total" in cli(server, "db", "prune", "--dry-run")
            assert len(await executions(http, flow_id)) == 3
            assert "deleted 2 run(s) in total" in cli(server, "db", "prune")
            assert await executions(http, flow_id) == [newest]
            gone = await http.get("/api/v1/executions", params={"flow_id": flow_id, "limit": 5})
            assert len(gone.json()["items"]) == 1

            assert (await http.delete("/api/v1/accounts/me/retention")).status_code == 204
            assert (await http.get("/api/v1/accounts/me/retention")).json()["own"] is None
            audit = (await http.get("/api/v1/audit", params={"limit": 20})).json()["items"]
            assert {"retention.set", "retention.cleared"} <= {r["action"] for r in audit}


async def test_the_background_pruner_applies_the_servers_default(tmp_path: Path) -> None:
    with Server(tmp_path, retention_failed_keep_last=1, retention_interval_seconds=0.2) as server:
        async with server.client() as http:
            ok_flow = await create_flow(http, FLOW)
            await run_three(http, ok_flow)  # successful runs: no default rule, all kept
            flow_id = await create_flow(
                http, "metadata: {name: Fails}\nnodes:\n  x: {type: fail, params: {message: no}}\n"
            )
            for _ in range(3):
                answer = await http.post(f"/api/v1/flows/{flow_id}/run?wait=30s", json={})
                assert answer.json()["status"] == "failed", answer.text
            # The hang guard bounds this; no event says "a pass ended", so poll.
            while len(await executions(http, flow_id)) > 1:  # noqa: ASYNC110
                await asyncio.sleep(0.1)
            # That pass (and every earlier one) saw the successful runs, and kept them.
            assert len(await executions(http, ok_flow)) == 3
