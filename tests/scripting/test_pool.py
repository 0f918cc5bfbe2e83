"""The worker pool: dead, killed and abandoned workers are replaced; callers queue fairly."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from flowrunner.errors import SandboxError, ScriptResourceError
from flowrunner.scripting import Sandbox
from flowrunner.scripting import process as process_module
from flowrunner.scripting.pool import Recycling, WorkerPool
from flowrunner.scripting.process import Limits
from tests.conftest import HANG_GUARD
from tests.scripting.processes import running, until_dead, until_spinning

pytestmark = pytest.mark.asyncio(loop_scope="module")


async def _until_seen_dead(box: Sandbox, pid: int) -> None:
    """Until the pool knows its idle worker ``pid`` died: the promise under test is that it
    then replaces it unseen. (A death in the instant before a call is that call's error.)"""
    await until_dead(pid)
    async with asyncio.timeout(HANG_GUARD):
        while any(w.alive for w in box._pool._live if w.pid == pid):  # noqa: ASYNC110
            await asyncio.sleep(0.01)


async def assert_next_evaluation_works(sandbox: Sandbox) -> None:
    assert await sandbox.evaluate_expression("input + 1", {"input": 41}) == 42


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def single() -> AsyncIterator[Sandbox]:
    """One worker only, so a test knows which process runs its script."""
    async with Sandbox(workers=1, timeout=1.0) as box:
        yield box


async def test_worker_killed_mid_evaluation_is_one_clear_error(single: Sandbox) -> None:
    [pid] = single.worker_pids
    running = asyncio.create_task(single.run_function("while (true) {}", {}, timeout=10))
    await until_spinning(pid)  # killed mid-evaluation, however long the script took to arrive
    os.kill(pid, signal.SIGKILL)
    with pytest.raises(ScriptResourceError, match=r"died \(killed by SIGKILL\)"):
        await running
    await assert_next_evaluation_works(single)
    assert single.worker_pids != [pid]


async def test_worker_killed_while_idle_is_replaced_transparently(single: Sandbox) -> None:
    await assert_next_evaluation_works(single)
    [pid] = single.worker_pids
    os.kill(pid, signal.SIGKILL)
    await _until_seen_dead(single, pid)
    await assert_next_evaluation_works(single)


async def test_cancelled_caller_leaves_no_busy_worker_behind(single: Sandbox) -> None:
    [pid] = single.worker_pids
    running = asyncio.create_task(single.run_function("while (true) {}", {}, timeout=10))
    await until_spinning(pid)  # canceled while the worker is busy with it
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    await assert_next_evaluation_works(single)


async def test_more_callers_than_workers_all_get_answers(sandbox: Sandbox) -> None:
    values = await asyncio.gather(
        *(sandbox.evaluate_expression("input * 2", {"input": i}) for i in range(20))
    )
    assert values == [i * 2 for i in range(20)]


async def test_pool_keeps_its_size_after_replacing_workers(sandbox: Sandbox) -> None:
    before = sandbox.worker_pids
    os.kill(before[0], signal.SIGKILL)
    await _until_seen_dead(sandbox, before[0])
    await asyncio.gather(*(sandbox.evaluate_expression("1", {}) for _ in range(6)))
    async with asyncio.timeout(HANG_GUARD):  # the replacement starts in the background
        while len(sandbox.worker_pids) != 2 or before[0] in sandbox.worker_pids:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
    assert len(sandbox.worker_pids) == 2
    assert before[0] not in sandbox.worker_pids


async def test_pool_needs_at_least_one_worker() -> None:
    with pytest.raises(ValueError, match="at least one"):
        WorkerPool(0, Limits(heap_mb=64, max_result_bytes=1000))


async def test_closed_pool_refuses_work() -> None:
    pool = WorkerPool(1, Limits(heap_mb=64, max_result_bytes=1000))
    await pool.start()
    await pool.close()
    assert pool.pids == []
    with pytest.raises(SandboxError, match="closed"):
        await pool.call(b"", 1.0)


async def test_workers_die_with_the_server_even_mid_script(tmp_path: Path) -> None:
    server = tmp_path / "server.py"
    server.write_text(
        "import asyncio\n"
        "from flowrunner.scripting import Sandbox\n"
        "async def main():\n"
        "    box = Sandbox(workers=1)\n"
        "    await box.start()\n"
        "    print(box.worker_pids[0], flush=True)\n"
        "    await box.run_function('while (true) {}', {}, timeout=60)\n"
        "asyncio.run(main())\n"
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(server), stdout=asyncio.subprocess.PIPE
    )
    assert process.stdout is not None
    worker_pid = int(await process.stdout.readline())
    await asyncio.sleep(0.2)  # the worker is now spinning in V8 (if not, it dies all the same)
    process.kill()
    await process.wait()
    await until_dead(worker_pid)  # a worker that outlived its server would hang here
    assert not running(worker_pid)


async def test_a_pool_whose_workers_cannot_start_fails_cleanly_and_says_why(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Far below what V8 needs to start: the real worker dies during start-up, and what it
    # printed (V8's "Fatal process out of memory: ...") is the reason in the error.
    monkeypatch.setattr(process_module, "_DATA_BASE_MB", 16)
    pool = WorkerPool(2, Limits(heap_mb=8, max_result_bytes=1000))
    with pytest.raises(SandboxError, match="could not start") as raised:
        await pool.start()
    assert pool.pids == []
    message = str(raised.value)
    assert re.search(r"failed to start \((killed by SIG\w+|exit status -?\d+): .+\)", message)
    assert "memory" in message.lower(), message


async def test_a_sandbox_whose_workers_cannot_start_names_the_reason_on_evaluation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(process_module, "_DATA_BASE_MB", 16)
    sandbox = Sandbox(workers=1, memory_mb=8)
    try:
        with pytest.raises(SandboxError, match=r"could not start: .*failed to start \(.+: .+\)"):
            await sandbox.evaluate_expression("1 + 1", {})
    finally:
        await sandbox.close()


async def test_recycling_by_resident_memory_replaces_the_worker(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A 1 MB mark: every worker is over it, so the first RSS check (after 256 evaluations)
    # starts a successor while the old worker keeps answering.
    async with Sandbox(workers=1, recycle_after=0, recycle_rss_mb=1) as sandbox:
        [first] = sandbox.worker_pids
        answers = []
        for n in range(3000):  # bounded; ends once the successor took over
            answers.append(await sandbox.evaluate_expression("input - 1", {"input": n}))
            if sandbox.recycled:
                break
            if n >= 256:
                await asyncio.sleep(0.01)
        assert sandbox.recycled == 1
        assert answers == [n - 1 for n in range(len(answers))]
        assert len(answers) > 256  # not before the first check
        assert sandbox.worker_pids != [first]
        await until_dead(first)  # a parked old worker would hang here until the guard
        assert not running(first)  # the old worker is gone, not parked


async def test_recycling_under_concurrent_callers_fails_no_evaluation() -> None:
    async with Sandbox(workers=2, recycle_after=40) as sandbox:
        first = set(sandbox.worker_pids)

        async def caller(k: int) -> list[int]:
            got = []
            for n in range(150):
                got.append(await sandbox.evaluate_expression("input * 3", {"input": k + n}))
                await asyncio.sleep(0.002)
            return got

        results = await asyncio.gather(*(caller(k * 1000) for k in range(4)))
        assert results == [[(k * 1000 + n) * 3 for n in range(150)] for k in range(4)]
        assert sandbox.recycled >= 1
        # Workers start on demand: whether the second one was ever needed depends on how
        # the callers interleaved on a busy machine; never more than the pool's size.
        assert 1 <= len(sandbox.worker_pids) <= 2
        assert set(sandbox.worker_pids) != first


async def test_recycling_limits_must_not_be_negative() -> None:
    with pytest.raises(ValueError, match="recycling"):
        Recycling(max_evaluations=-1)


async def test_callers_waiting_for_a_busy_worker_each_get_a_turn(single: Sandbox) -> None:
    # The sandbox's fair semaphore hands a freed worker to the longest waiter, never back to
    # the caller that just released it (asyncio.Queue alone lets it barge).
    served = [0, 0, 0]
    total = 150  # bounded: the callers stop once this many evaluations were answered

    enough = asyncio.Event()

    async def caller(k: int) -> None:
        while sum(served) < total:
            await single.evaluate_expression("input + 1", {"input": k})
            served[k] += 1
        enough.set()

    tasks = [asyncio.create_task(caller(k)) for k in range(3)]
    await enough.wait()  # the pytest timeout guards a hang
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    # Taking turns gives each about a third; a barging hand-off gives [150, 1, 1].
    assert min(served) >= total // 6, served


async def test_workers_start_on_demand_up_to_the_pool_size() -> None:
    async with Sandbox(workers=2, timeout=5.0) as box:
        assert len(box.worker_pids) == 1
        for _ in range(5):  # one caller at a time: one worker is enough
            await assert_next_evaluation_works(box)
        assert len(box.worker_pids) == 1
        # Two callers at once, each holding its worker until both have started.
        script = "return new Promise(() => {})"
        busy = [asyncio.create_task(box.run_function(script, {})) for _ in range(2)]
        async with asyncio.timeout(HANG_GUARD):
            while len(box.worker_pids) < 2:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        results = await asyncio.gather(*busy, return_exceptions=True)
        assert all("never settled" in str(r) for r in results)
        assert len(box.worker_pids) == 2


async def test_idle_workers_are_closed_and_started_again_when_needed() -> None:
    async with Sandbox(workers=2, timeout=5.0, idle_seconds=0.2) as box:
        [first] = box.worker_pids
        await assert_next_evaluation_works(box)
        async with asyncio.timeout(HANG_GUARD):
            while box.worker_pids:  # noqa: ASYNC110
                await asyncio.sleep(0.02)
        await until_dead(first)
        assert box.shrunk == 1
        await assert_next_evaluation_works(box)
        [second] = box.worker_pids
        assert second != first


async def test_idle_seconds_must_not_be_negative() -> None:
    with pytest.raises(ValueError, match="idle_seconds"):
        WorkerPool(1, Limits(heap_mb=64, max_result_bytes=1000), idle_seconds=-1)
