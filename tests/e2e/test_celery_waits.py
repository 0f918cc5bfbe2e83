"""Durable waits under Celery, end to end: a waiting run holds no worker, the waker on the API
process enqueues it when its timer is due, a signal sent to the API resumes it, and a worker
killed while the run waits loses nothing (docs/deploy.md, docs/waiting.md)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import HANG_GUARD
from tests.e2e.cluster import cluster, ended, events, execution, until
from tests.e2e.server import create_flow, start_run

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

# A delay over the durable threshold (a timer: the waker's), then a wait for a signal.
WAITS = """metadata: {name: Waits}
nodes:
  nap: {type: delay, params: {duration: 2s}, next: {default: approve}}
  approve: {type: wait_for, params: {name: go}, next: {default: done}}
  done: {type: set, params: {values: {got: "${input.ok}"}}}
"""

ONE_NODE = """metadata: {name: One node}
nodes:
  only: {type: set, params: {values: {done: true}}}
"""


def _statuses(history: list[dict[str, Any]]) -> list[str]:
    """The statuses the run went through (the final event carries the last one)."""
    return [e["data"]["status"] for e in history if isinstance(e["data"].get("status"), str)]


# A hang guard: a database, an API server and two workers start on a busy machine.
@pytest.mark.timeout(300)
async def test_a_waiting_run_frees_its_worker_is_woken_and_signaled_through_a_worker_kill(
    tmp_path: Path,
) -> None:
    # Every delay over a second waits durably; the waker looks five times a second.
    with cluster(
        tmp_path, "redis", durable_wait_threshold_seconds=1, waker_tick_seconds=0.2
    ) as made:
        api = made.api(ready=False)
        first = made.worker("--concurrency", "1", ready=False)
        made.ready()
        async with api.client() as client:
            run_id = await start_run(client, await create_flow(client, WAITS), {})
            napping = await until(
                lambda: execution(client, run_id),
                lambda run: run["status"] == "waiting",
                "the nap to wait durably",
            )
            assert napping["waiting_for"] == {"node_id": "nap", "kind": "timer"}
            # Its ``waiting`` event is stored before its status: the history says it waits.
            await _until_waiting_event(client, run_id)
            # The run holds nothing on the worker: killed now, it takes nothing with it.
            first.kill()
            second = made.worker("--concurrency", "1")
            # The timer comes: the API's waker enqueues the run, the new worker resumes it.
            signaled = await until(
                lambda: execution(client, run_id),
                lambda run: run["status"] == "waiting" and run["waiting_for"]["node_id"] != "nap",
                "the run to wait for its signal",
            )
            assert signaled["waiting_for"] == {
                "node_id": "approve", "kind": "signal", "signal": "go",
            }  # fmt: skip
            # Its slot is free: another run goes through the one-slot worker meanwhile.
            other = await start_run(client, await create_flow(client, ONE_NODE), {})
            assert (await ended(client, other))["status"] == "completed"
            assert (await execution(client, run_id))["status"] == "waiting"
            sent = await client.post(f"/api/v1/executions/{run_id}/signals/go", json={"ok": True})
            assert sent.status_code == 202, sent.text
            done = await ended(client, run_id)
            assert done["status"] == "completed"
            assert done["output"] == {"got": True}
            history = await events(client, run_id)
        assert [e["seq"] for e in history] == list(range(1, len(history) + 1))
        assert _statuses(history) == [
            "running", "waiting", "running", "waiting", "running", "completed",
        ]  # fmt: skip
        # Each node ran to its end once: the nap and the wait each finished when woken.
        finished = [e["data"]["node_id"] for e in history if e["data"].get("state") == "finished"]
        assert finished == ["nap", "approve", "done"]
        # Started on the first worker, woken by a waker — the API's or the new worker's (both
        # sweep; the claim is atomic, so exactly one logs it) — and finished on the second.
        assert _logged(first.log, "execution waiting", run_id)
        woken_by = [
            log
            for log in (api.data_dir / "server.log", second.log)
            if _logged(log, "waking execution", run_id)
        ]
        assert len(woken_by) == 1
        assert _logged(second.log, "execution completed", run_id)


async def _until_waiting_event(client: httpx.AsyncClient, execution_id: str) -> None:
    """Follow the run's event stream until its ``waiting`` status event."""
    async with (
        asyncio.timeout(HANG_GUARD),
        client.stream("GET", f"/api/v1/executions/{execution_id}/events") as response,
    ):
        async for line in response.aiter_lines():
            data = json.loads(line.removeprefix("data: ")) if line.startswith("data: ") else {}
            if data.get("data", {}).get("status") == "waiting":
                return


def _logged(log: Path, event: str, execution_id: str) -> bool:
    return any(event in line and execution_id in line for line in log.read_text().splitlines())


NAP = """metadata: {name: Nap}
nodes:
  nap: {type: delay, params: {duration: 5s}, next: {default: done}}
  done: {type: set, params: {values: {slept: true}}}
"""


@pytest.mark.timeout(300)
async def test_workers_wake_due_timers_with_no_api_process_running(tmp_path: Path) -> None:
    with cluster(
        tmp_path, "redis", durable_wait_threshold_seconds=1, waker_tick_seconds=0.2
    ) as made:
        api = made.api(ready=False)
        worker = made.worker("--concurrency", "1", ready=False)
        made.ready()
        async with api.client() as client:
            run_id = await start_run(client, await create_flow(client, NAP), {})
            await until(
                lambda: execution(client, run_id),
                lambda run: run["status"] == "waiting",
                "the nap to wait durably",
            )
        # No API process from here on: only the worker can wake the run when it is due.
        api.stop()
        await until(
            lambda: asyncio.to_thread(_logged, worker.log, "execution completed", run_id),
            bool,
            "the worker to wake and finish the run",
        )
        assert _logged(worker.log, "waking execution", run_id)
        api.start()  # to read the run back
        async with api.client() as client:
            done = await execution(client, run_id)
            assert done["status"] == "completed"
            assert done["output"] == {"slept": True}
            assert _statuses(await events(client, run_id)) == [
                "running", "waiting", "running", "completed",
            ]  # fmt: skip
