"""One worker process, driven asynchronously and synchronously."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import time
from collections.abc import Iterator

import pytest

from flowrunner.errors import ScriptResourceError, ScriptTimeout
from flowrunner.scripting import process as process_module
from flowrunner.scripting.codec import decode_reply, encode_request, encode_scope
from flowrunner.scripting.process import AsyncWorker, Limits, SyncWorker
from flowrunner.scripting.worker import (
    KIND_EXPRESSION,
    KIND_FUNCTION,
    OP_CHECK,
    OP_RUN,
    STATUS_OK,
    STATUS_VALUE,
)
from tests.conftest import HANG_GUARD
from tests.scripting.processes import until_dead

LIMITS = Limits(heap_mb=32, max_result_bytes=10_000)


def run_request(code: str, scope: dict[str, object] | None = None) -> bytes:
    scope = scope or {}
    return encode_request(OP_RUN, KIND_FUNCTION, ",".join(scope), code, encode_scope(scope))


@pytest.fixture
def sync_worker() -> Iterator[SyncWorker]:
    worker = SyncWorker(LIMITS)
    yield worker
    worker.close()


async def test_async_worker_answers_requests_until_killed() -> None:
    worker = await AsyncWorker.spawn(LIMITS)
    try:
        reply = await worker.call(run_request("return input * 2", {"input": 21}))
        assert reply.status == STATUS_VALUE
        assert json.loads(reply.payload)["v"] == 42
        assert worker.alive
    finally:
        await worker.kill()
    assert not worker.alive
    assert worker.process.returncode is not None


def test_sync_worker_starts_on_first_call(sync_worker: SyncWorker) -> None:
    reply = sync_worker.call(encode_request(OP_CHECK, KIND_EXPRESSION, "", "1 + 1"), 5.0)
    assert reply.status == STATUS_OK


def test_sync_worker_times_out_then_restarts(sync_worker: SyncWorker) -> None:
    with pytest.raises(ScriptTimeout, match="after 200 ms"):
        sync_worker.call(run_request("while (true) {}"), 0.2)
    assert decode_reply(sync_worker.call(run_request("return 7"), 5.0))["v"] == 7


def test_sync_worker_replaces_a_worker_that_died_idle(sync_worker: SyncWorker) -> None:
    assert decode_reply(sync_worker.call(run_request("return 1"), 5.0))["v"] == 1
    pid = sync_worker.pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    # Died, and seen dead by its reaper: a signal is delivered, and its exit collected,
    # some time after os.kill returns.
    asyncio.run(until_dead(pid))
    deadline = time.monotonic() + HANG_GUARD
    while sync_worker._process is not None and sync_worker._process.poll() is None:
        assert time.monotonic() < deadline, "the killed worker's exit was never collected"
        time.sleep(0.01)
    assert decode_reply(sync_worker.call(run_request("return 2"), 5.0))["v"] == 2
    assert sync_worker.pid != pid


def test_sync_worker_reports_a_heap_blow_up_and_recovers(sync_worker: SyncWorker) -> None:
    bomb = run_request("const a = []; for (;;) a.push(new Array(1e5).fill(1.5));")
    with pytest.raises(ScriptResourceError, match="memory limit"):
        decode_reply(sync_worker.call(bomb, 10.0))
    assert decode_reply(sync_worker.call(run_request("return 3"), 5.0))["v"] == 3


def test_sync_worker_that_cannot_start_names_the_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    # Too little memory for V8 to start: what the worker printed is part of the error.
    monkeypatch.setattr(process_module, "_DATA_BASE_MB", 16)
    worker = SyncWorker(Limits(heap_mb=8, max_result_bytes=1000))
    try:
        with pytest.raises(ScriptResourceError) as raised:
            worker.call(encode_request(OP_CHECK, KIND_EXPRESSION, "", "1"), 10)
        how = re.search(
            r"died \((killed by SIG\w+|exit status -?\d+): ([^)]+)\)", str(raised.value)
        )
        assert how is not None, str(raised.value)
        assert "memory" in how[2].lower()  # V8's "Fatal process out of memory: ..."
    finally:
        worker.close()
