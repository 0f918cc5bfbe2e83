"""The syntax checker: one pool worker behind blocking calls, for synchronous validation."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import threading
import time
from collections.abc import Iterator

import pytest

from flowrunner.errors import SandboxError, ScriptError, ScriptResourceError, ScriptTimeout
from flowrunner.scripting import process as process_module
from flowrunner.scripting.checker import SyntaxChecker
from flowrunner.scripting.codec import decode_reply, encode_request, encode_scope
from flowrunner.scripting.process import Limits
from flowrunner.scripting.worker import (
    KIND_EXPRESSION,
    KIND_FUNCTION,
    OP_CHECK,
    OP_RUN,
    STATUS_OK,
)
from tests.conftest import HANG_GUARD
from tests.scripting.processes import until_dead

LIMITS = Limits(heap_mb=32, max_result_bytes=10_000)


def check(code: str, kind: bytes = KIND_EXPRESSION) -> bytes:
    return encode_request(OP_CHECK, kind, "", code)


def run_request(code: str) -> bytes:
    return encode_request(OP_RUN, KIND_FUNCTION, "", code, encode_scope({}))


@pytest.fixture
def checker() -> Iterator[SyntaxChecker]:
    checker = SyntaxChecker(LIMITS)
    yield checker
    checker.close()


def test_checker_starts_its_worker_on_first_call(checker: SyntaxChecker) -> None:
    assert checker.pids == []
    assert checker.call(check("1 + 1"), 5.0).status == STATUS_OK
    assert len(checker.pids) == 1
    with pytest.raises(ScriptError) as bad:
        decode_reply(checker.call(check("let x = ;", KIND_FUNCTION), 5.0))
    assert (bad.value.line, bad.value.column) == (1, 9)


def test_checker_serves_threads_at_once_with_one_worker(checker: SyntaxChecker) -> None:
    replies: list[bytes] = []
    threads = [
        threading.Thread(target=lambda: replies.append(checker.call(check("1"), 5.0).status))
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert replies == [STATUS_OK] * 4
    assert len(checker.pids) == 1


async def test_checker_called_from_a_coroutine_does_not_block_its_own_loop_forever(
    checker: SyntaxChecker,
) -> None:
    # The CLI validates inside asyncio.run: the checker's loop is another one.
    assert checker.call(check("input.a"), 5.0).status == STATUS_OK


def test_checker_times_out_then_serves_with_a_fresh_worker(checker: SyntaxChecker) -> None:
    with pytest.raises(ScriptTimeout, match="after 200 ms"):
        checker.call(run_request("while (true) {}"), 0.2)
    assert decode_reply(checker.call(run_request("return 7"), 5.0))["v"] == 7


def test_checker_replaces_a_worker_that_died_idle(checker: SyntaxChecker) -> None:
    assert decode_reply(checker.call(run_request("return 1"), 5.0))["v"] == 1
    [pid] = checker.pids
    os.kill(pid, signal.SIGKILL)
    asyncio.run(until_dead(pid))
    # Seen dead by the checker's loop (the socket closed): then the next call gets a new one.
    deadline = time.monotonic() + HANG_GUARD
    pool = checker._pool
    assert pool is not None
    while any(w.alive for w in pool._live if w.pid == pid):
        assert time.monotonic() < deadline, "the killed worker was never seen dead"
        time.sleep(0.01)
    assert decode_reply(checker.call(run_request("return 2"), 5.0))["v"] == 2
    assert checker.pids != [pid]


def test_checker_reports_a_heap_blow_up_and_recovers(checker: SyntaxChecker) -> None:
    bomb = run_request("const a = []; for (;;) a.push(new Array(1e5).fill(1.5));")
    with pytest.raises(ScriptResourceError, match="memory limit"):
        decode_reply(checker.call(bomb, 10.0))
    assert decode_reply(checker.call(run_request("return 3"), 5.0))["v"] == 3


def test_checker_whose_worker_cannot_start_names_the_reason(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Too little memory for V8 to start: what the worker printed is part of the error.
    monkeypatch.setattr(process_module, "_DATA_BASE_MB", 16)
    checker = SyntaxChecker(Limits(heap_mb=8, max_result_bytes=1000))
    try:
        with pytest.raises(SandboxError, match="could not start") as raised:
            checker.call(check("1"), 10)
        how = re.search(
            r"failed to start \((killed by SIG\w+|exit status -?\d+): ([^)]+)\)", str(raised.value)
        )
        assert how is not None, str(raised.value)
        assert "memory" in how[2].lower()  # V8's "Fatal process out of memory: ..."
    finally:
        checker.close()


def test_a_closed_checker_refuses_calls_and_leaves_no_thread() -> None:
    checker = SyntaxChecker(LIMITS)
    checker.call(check("1"), 5.0)
    thread = checker._thread
    assert thread is not None
    assert thread.is_alive()
    checker.close()
    assert not thread.is_alive()
    with pytest.raises(SandboxError, match="closed"):
        checker.call(check("1"), 5.0)
    checker.close()  # twice is fine
