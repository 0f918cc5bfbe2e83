"""Crash recovery through real processes: ``kill -9`` a server with runs in flight, start it
again, and every run completes from its last checkpoint — none lost, none re-run past it."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import HANG_GUARD
from tests.e2e.server import Server

pytestmark = pytest.mark.slow

RUNS = 20
SLOW = """metadata: {name: Slow}
nodes:
  first: {type: set, params: {values: {step: 1}}, next: {default: nap}}
  nap: {type: delay, params: {duration: 2s}, next: {default: middle}}
  middle: {type: set, params: {values: {step: 2}}, next: {default: last}}
  last: {type: set, params: {values: {step: 3}}}
"""
PATH = ["first", "nap", "middle", "last"]


async def _statuses(client: httpx.AsyncClient, flow_id: str) -> Counter[str]:
    page = await client.get("/api/v1/executions", params={"flow_id": flow_id, "limit": 100})
    return Counter(item["status"] for item in page.json()["items"])


async def _until(
    client: httpx.AsyncClient, flow_id: str, status: str, count: int, *, within: float
) -> None:
    async with asyncio.timeout(within):
        # Another process does the work: polling its API is the only way to watch it.
        while (await _statuses(client, flow_id))[status] < count:  # noqa: ASYNC110
            await asyncio.sleep(0.1)


async def _events(client: httpx.AsyncClient, execution_id: str) -> list[dict[str, Any]]:
    # The SSE stream of a finished run is its full history, then it ends.
    response = await client.get(f"/api/v1/executions/{execution_id}/events")
    frames = [f for f in response.text.split("\n\n") if f.strip()]

    return [json.loads(f.split("data: ", 1)[1]) for f in frames]


async def test_kill_9_mid_run_then_restart_completes_every_run_from_its_checkpoint(
    tmp_path: Path,
) -> None:
    server = Server(tmp_path, lease_ttl_seconds=2, recovery_interval_seconds=0.5)
    try:
        server.start()
        async with server.client() as client:
            created = await client.post(
                "/api/v1/flows", content=SLOW, headers={"content-type": "application/yaml"}
            )
            flow_id = created.json()["id"]
            started = await asyncio.gather(
                *[
                    client.post(f"/api/v1/flows/{flow_id}/run", json={"input": {"n": i}})
                    for i in range(RUNS)
                ]
            )
            ids = [r.json()["execution_id"] for r in started]
            await _until(client, flow_id, "running", 10, within=HANG_GUARD)
        server.kill()

        server.start()
        async with server.client() as client:
            await _until(client, flow_id, "completed", RUNS, within=2 * HANG_GUARD)
            assert await _statuses(client, flow_id) == Counter({"completed": RUNS})
            resumed_runs = 0
            for execution_id in ids:
                events = await _events(client, execution_id)
                assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
                assert events[-1]["type"] == "complete"
                resumes = [i for i, e in enumerate(events) if e["data"].get("resumed")]
                assert len(resumes) <= 1
                start = None
                if resumes:
                    resumed_runs += 1
                    cut = resumes[0]
                    after = [
                        e["data"]["node_id"]
                        for e in events[cut:]
                        if e["data"].get("state") == "started"
                    ]
                    # Only what the checkpoint had not covered runs again, in order.
                    # (None: it died before its first checkpoint, so it starts over.)
                    start = events[cut]["data"]["from_node"] or PATH[0]
                    assert after == PATH[PATH.index(start) :]
                finished = Counter(
                    e["data"]["node_id"] for e in events if e["data"].get("state") == "finished"
                )
                # At-least-once per node: only the node in flight at the crash (its events
                # stored, its checkpoint not yet) may have finished twice.
                rerun = start if resumes else None
                for node in PATH:
                    assert finished[node] in ((1, 2) if node == rerun else (1,)), (node, events)
            assert resumed_runs >= 10
            # Resumed from their checkpoints, then ended: no checkpoint is kept.
            assert _checkpoint_rows(tmp_path) == 0
    finally:
        server.kill()


def _checkpoint_rows(data_dir: Path) -> int:
    # A read-only look at the server's SQLite file (WAL lets a reader in while it serves).
    conn = sqlite3.connect(f"file:{data_dir / 'flowrunner.db'}?mode=ro", uri=True)
    try:
        (count,) = conn.execute("SELECT count(*) FROM checkpoints").fetchone()
    finally:
        conn.close()
    return int(count)


BARE = """metadata: {name: Bare}
nodes:
  first: {type: set, params: {values: {a: 1}}, next: {default: answer}}
  answer: {type: transform, params: {script: "return 42"}}
"""


async def test_a_run_ending_in_a_bare_number_completes_once_and_is_never_resumed(
    tmp_path: Path,
) -> None:
    """On SQLite the final output 42 used to be stored as an integer the runner could not read
    back: it crashed after its last node, and recovery re-ran that node every few seconds."""
    server = Server(tmp_path, lease_ttl_seconds=1, recovery_interval_seconds=0.2)
    try:
        server.start()
        async with server.client() as client:
            created = await client.post(
                "/api/v1/flows", content=BARE, headers={"content-type": "application/yaml"}
            )
            flow_id = created.json()["id"]
            done = await client.post(f"/api/v1/flows/{flow_id}/run?wait=20s", json={})
            assert done.status_code == 200, done.text
            assert (done.json()["status"], done.json()["output"]) == ("completed", 42)
            execution_id = done.json()["id"]
            # Several recovery sweeps later, nothing was resumed or run again.
            await asyncio.sleep(1.5)
            again = await client.get(f"/api/v1/executions/{execution_id}")
            assert again.json()["output"] == 42
            events = await _events(client, execution_id)
            assert not [e for e in events if e["data"].get("resumed")]
            finished = [e for e in events if e["data"].get("state") == "finished"]
            assert [e["data"]["node_id"] for e in finished] == ["first", "answer"]
            assert _checkpoint_rows(tmp_path) == 0
    finally:
        server.kill()
