"""Waiting runs hold nothing and survive anything, through real ``flowrunner serve`` processes:
a thousand runs waiting on a signal leave the executor's slots to other runs, and runs waiting
on a signal or a timer resume after the server was killed with ``kill -9``."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import httpx
import pytest

from tests.conftest import HANG_GUARD
from tests.e2e.server import Server, create_flow, run_in_status, start_run, stored_events
from tests.e2e.test_waiting import DURABLE, node_steps, statuses

pytestmark = pytest.mark.slow

SIGNAL = """metadata: {name: Signal}
nodes:
  approve: {type: wait_for, params: {name: go}, next: {default: done}}
  done: {type: set, params: {values: {went: "${shared.n}"}}}
"""
TIMER = """metadata: {name: Timer}
nodes:
  nap: {type: delay, params: {duration: 3s}, next: {default: done}}
  done: {type: set, params: {values: {slept: true}}}
"""
QUICK = """metadata: {name: Quick}
nodes:
  only: {type: set, params: {values: {quick: true}}}
"""
MANY = 1000


async def count(client: httpx.AsyncClient, flow_id: str) -> Counter[str]:
    """Runs of ``flow_id`` by status (every page)."""
    found: Counter[str] = Counter()
    cursor = None
    while True:
        params: dict[str, str | int] = {"flow_id": flow_id, "limit": 100}
        if cursor:
            params["cursor"] = cursor
        page = (await client.get("/api/v1/executions", params=params)).json()
        found.update(item["status"] for item in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return found


async def until_count(
    client: httpx.AsyncClient, flow_id: str, status: str, wanted: int, *, within: float
) -> None:
    async with asyncio.timeout(within):
        while (await count(client, flow_id))[status] < wanted:  # noqa: ASYNC110
            await asyncio.sleep(0.2)


def rss_kib(server: Server) -> int:
    assert server.process is not None
    status = Path(f"/proc/{server.process.pid}/status").read_text()
    line = next(x for x in status.splitlines() if x.startswith("VmRSS:"))
    return int(line.split()[1])


async def test_runs_waiting_on_a_signal_hold_no_executor_slot_and_little_memory(
    tmp_path: Path,
) -> None:
    with Server(tmp_path, executor_concurrency=4, **DURABLE) as server:
        async with server.client() as client:
            signal_flow = await create_flow(client, SIGNAL)
            quick_flow = await create_flow(client, QUICK)
            # Warm up every path a waiting run takes (and the quick one), then measure.
            warm = [await start_run(client, signal_flow, {"n": -1}) for _ in range(20)]
            for run_id in warm:
                await run_in_status(client, run_id, "waiting")
            before = rss_kib(server)

            for first in range(0, MANY, 50):
                await asyncio.gather(
                    *(start_run(client, signal_flow, {"n": n}) for n in range(first, first + 50))
                )
            await until_count(client, signal_flow, "waiting", MANY + 20, within=10 * HANG_GUARD)
            after = rss_kib(server)
            added = after - before
            print(
                f"\n{MANY} waiting runs: RSS {before} KiB -> {after} KiB, "
                f"+{added} KiB ({added * 1024 / MANY:.0f} bytes per waiting run)"
            )
            # Nothing per run stays in the process (no task, no runner state): what grows is
            # the allocator's and the SQLite page cache's high-water mark from the burst.
            assert added < 64 * 1024

            # Four slots, a thousand waiting runs: the quick runs still get the slots.
            quick = [await start_run(client, quick_flow, {}) for _ in range(20)]
            for run_id in quick:
                assert (await run_in_status(client, run_id, "completed", "failed"))[
                    "status"
                ] == "completed"

            # And the waiting ones still resume on their signal.
            for run_id in warm:
                sent = await client.post(f"/api/v1/executions/{run_id}/signals/go", json={})
                assert sent.status_code == 202, sent.text
            for run_id in warm:
                done = await run_in_status(client, run_id, "completed", "failed")
                assert done["output"] == {"went": -1}
            assert (await count(client, signal_flow))["waiting"] == MANY


async def test_waiting_runs_resume_on_signal_and_timer_after_kill_9(tmp_path: Path) -> None:
    server = Server(tmp_path, lease_ttl_seconds=2, recovery_interval_seconds=0.5, **DURABLE)
    try:
        server.start()
        async with server.client() as client:
            signal_flow = await create_flow(client, SIGNAL)
            timer_flow = await create_flow(client, TIMER)
            signaled = [await start_run(client, signal_flow, {"n": n}) for n in range(5)]
            timed = [await start_run(client, timer_flow, {}) for _ in range(5)]
            for run_id in (*signaled, *timed):
                await run_in_status(client, run_id, "waiting", "completed")
            # The timers were not due yet when the process died (or some were: either way
            # they must end completed, each slept once).
        server.kill()

        server.start()
        async with server.client() as client:
            for n, run_id in enumerate(signaled):
                run = await run_in_status(client, run_id, "waiting")
                assert run["waiting_for"]["signal"] == "go"
                sent = await client.post(f"/api/v1/executions/{run_id}/signals/go", json={})
                assert sent.status_code == 202, sent.text
                done = await run_in_status(client, run_id, "completed", "failed")
                assert done["output"] == {"went": n}
            for run_id in timed:
                done = await run_in_status(client, run_id, "completed", "failed")
                assert done["status"] == "completed"
                history = await stored_events(client, run_id)
                assert statuses(history) == ["running", "waiting", "running", "completed"]
                finished = [s[0] for s in node_steps(history) if s[1] == "finished"]
                assert finished == ["nap", "done"]  # the nap ended once, by its timer
    finally:
        server.stop()
