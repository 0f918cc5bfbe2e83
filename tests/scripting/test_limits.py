"""Every limit ends one evaluation with one clear error, and the next evaluation just works."""

from __future__ import annotations

import asyncio
import time

import pytest

from flowrunner.errors import ScriptError, ScriptResourceError, ScriptTimeout
from flowrunner.scripting import Sandbox
from tests.conftest import HANG_GUARD

pytestmark = pytest.mark.asyncio(loop_scope="module")

HEAP_BOMB = "const a = []; while (true) a.push(new Array(100000).fill(1.5));"


async def assert_next_evaluation_works(sandbox: Sandbox) -> None:
    assert await sandbox.evaluate_expression("input + 1", {"input": 41}) == 42


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


async def test_infinite_loop_stops_at_the_default_time_limit(sandbox: Sandbox) -> None:
    started = time.perf_counter()
    # The loop never ends by itself: ending at all proves the limit, the message which one.
    with pytest.raises(ScriptTimeout, match=r"^script timed out after 1000 ms$"):
        async with asyncio.timeout(HANG_GUARD):
            await sandbox.run_function("while (true) {}", {})
    assert time.perf_counter() - started > 0.9  # not before it
    await assert_next_evaluation_works(sandbox)


async def test_time_limit_is_configurable_per_call() -> None:
    # The default outlasts the hang guard: only the call's own limit can end the loop.
    async with Sandbox(workers=1, timeout=2 * HANG_GUARD) as box:
        started = time.perf_counter()
        with pytest.raises(ScriptTimeout, match="after 200 ms"):
            async with asyncio.timeout(HANG_GUARD):
                await box.evaluate_expression("(() => { for (;;) {} })()", {}, timeout=0.2)
        assert time.perf_counter() - started > 0.15
        await assert_next_evaluation_works(box)


async def test_time_limit_is_configurable_globally() -> None:
    async with Sandbox(workers=1, timeout=0.15) as box:
        with pytest.raises(ScriptTimeout, match="after 150 ms"):
            await box.run_function("while (true) {}", {})
        await assert_next_evaluation_works(box)


async def test_heap_bomb_stops_at_the_heap_limit(sandbox: Sandbox) -> None:
    with pytest.raises(ScriptResourceError, match="memory limit"):
        await sandbox.run_function(HEAP_BOMB, {}, timeout=10)
    await assert_next_evaluation_works(sandbox)


async def test_string_bomb_stops_at_a_limit(sandbox: Sandbox) -> None:
    body = "let s = 'x'; while (true) s = (s + s).split('').join('');"
    with pytest.raises(ScriptResourceError):
        await sandbox.run_function(body, {}, timeout=10)
    await assert_next_evaluation_works(sandbox)


async def test_typed_array_bomb_is_one_clear_error(sandbox: Sandbox) -> None:
    body = "const bufs = []; for (;;) bufs.push(new Uint8Array(1 << 30).fill(1));"
    with pytest.raises(ScriptError, match="Uint8Array is not defined"):
        await sandbox.run_function(body, {})
    await assert_next_evaluation_works(sandbox)


async def test_webassembly_memory_grow_is_one_clear_error(sandbox: Sandbox) -> None:
    body = "const m = new WebAssembly.Memory({initial: 1}); for (;;) m.grow(1000);"
    with pytest.raises(ScriptError, match="WebAssembly is not defined"):
        await sandbox.run_function(body, {})
    await assert_next_evaluation_works(sandbox)


async def test_256_mb_return_value_is_refused(sandbox: Sandbox) -> None:
    with pytest.raises(ScriptResourceError):
        await sandbox.run_function("return 'x'.repeat(256 * 1024 * 1024)", {}, timeout=10)
    await assert_next_evaluation_works(sandbox)


async def test_result_size_limit_counts_utf8_bytes() -> None:
    async with Sandbox(workers=1, max_result_bytes=1000) as box:
        with pytest.raises(ScriptResourceError, match="over the limit of 1000"):
            await box.evaluate_expression("'x'.repeat(2000)", {})
        # 600 characters fit in JS, but their UTF-8 does not.
        with pytest.raises(ScriptResourceError, match="bytes, over the limit of 1000"):
            await box.evaluate_expression("'é'.repeat(600)", {})
        assert await box.evaluate_expression("'é'.repeat(100)", {}) == "é" * 100


async def test_microtask_loop_times_out_its_own_evaluation(sandbox: Sandbox) -> None:
    body = "Promise.resolve().then(function again() { Promise.resolve().then(again); }); return 1;"
    with pytest.raises(ScriptTimeout):
        await sandbox.run_function(body, {}, timeout=0.3)
    await assert_next_evaluation_works(sandbox)


async def test_server_rss_stays_bounded(sandbox: Sandbox) -> None:
    await sandbox.evaluate_expression("'warm'.repeat(1000)", {})
    before = rss_mb()
    for _ in range(8):
        value = await sandbox.evaluate_expression("'y'.repeat(5 * 1024 * 1024)", {})
        assert len(value) == 5 * 1024 * 1024
        del value
        # Refused inside the worker: the 10 MB never reach this process.
        with pytest.raises(ScriptResourceError, match="over the limit"):
            await sandbox.evaluate_expression("'z'.repeat(10 * 1024 * 1024)", {}, timeout=10)
    assert rss_mb() - before < 40
