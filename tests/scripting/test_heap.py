"""A worker's V8 heap stays flat however many evaluations it serves.

Each evaluation used to compile a new script (the scope was written into the call's source)
and V8 kept those until a full collection that often never came before the heap limit: a
worker failed an innocent evaluation after ~150k. Now the data crosses as a value and only
distinct snippets are compiled, once each.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from flowrunner.scripting import Sandbox

pytestmark = pytest.mark.asyncio(loop_scope="module")

EVALUATIONS = 10_000
# Over these 10k evaluations the old code's heap grew by ~12 MB (and kept growing until the
# limit); now it moves by ~2 MB of short-lived garbage that V8 collects on its own (a
# sawtooth that stays under ~8 MB). A third of the old growth tells the two apart, by
# allocation counts rather than by time.
MAX_GROWTH = 4 << 20


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def single() -> AsyncIterator[Sandbox]:
    async with Sandbox(workers=1, timeout=5.0, memory_mb=64) as box:
        yield box


async def test_stats_report_the_heap_and_the_compiled_snippets(single: Sandbox) -> None:
    await single.evaluate_expression("input.a + 1", {"input": {"a": 1}})
    stats = await single.worker_stats()
    assert 0 < stats["heap_used"] <= stats["heap_total"]
    assert stats["heap_limit"] == 64 << 20
    assert stats["compiled"] >= 1
    assert stats["evaluations"] >= 1


async def test_same_script_with_distinct_scopes_does_not_grow_the_heap(single: Sandbox) -> None:
    expression = "input.orders.map((o) => o.total * params.rate).reduce((a, b) => a + b, 0)"
    body = "shared.seen = (shared.seen ?? 0) + 1; return input.orders.length + input.tag.length"

    async def one(n: int) -> None:
        orders = [{"id": n, "total": n + i} for i in range(5)]
        scope = {"input": {"orders": orders, "tag": f"t-{n}"}, "params": {"rate": 2}}
        assert await single.evaluate_expression(expression, scope) == sum(
            (n + i) * 2 for i in range(5)
        )
        result = await single.run_function(body, {**scope, "shared": {"seen": n}})
        assert result.shared == {"seen": n + 1}

    for n in range(100):  # warm up: both snippets compiled, young space settled
        await one(n)
    before = await single.worker_stats()
    for n in range(EVALUATIONS // 2):
        await one(n)
    after = await single.worker_stats()

    assert after["evaluations"] - before["evaluations"] == EVALUATIONS
    assert after["compiled"] == before["compiled"]  # the two snippets, compiled once each
    assert after["collections"] == before["collections"]  # flat on its own, no forced GC
    assert after["heap_used"] - before["heap_used"] < MAX_GROWTH, (before, after)
