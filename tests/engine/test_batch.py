"""Batch nodes: serial, parallel and worker-pool strategies, order, retries, failure."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flowrunner.engine import BatchPolicy, Flow, Node, NodeEvent, RetryPolicy
from flowrunner.errors import NodeFailed
from tests.conftest import HANG_GUARD


class Probe(Node):
    """An async batch node that records how many items run at the same time.

    Item ``n`` sleeps ``(count - n)`` ms, so later items finish first and order has to be
    restored by the engine, not by luck.
    """

    def __init__(self, count: int, **kw: Any) -> None:
        super().__init__(**kw)
        self.count = count
        self.running = 0
        self.max_running = 0

    async def exec(self, prep_res: Any) -> Any:
        self.running += 1
        self.max_running = max(self.max_running, self.running)
        try:
            await asyncio.sleep((self.count - prep_res) / 1000)
        finally:
            self.running -= 1
        return prep_res * 10


async def test_serial_batch_runs_exec_per_item_one_at_a_time_in_order() -> None:
    node = Probe(5, batch=BatchPolicy("serial"))
    result = await Flow(node).run(range(5))
    assert result.output == [0, 10, 20, 30, 40]
    assert node.max_running == 1


async def test_parallel_batch_runs_all_items_at_once_and_keeps_input_order() -> None:
    node = Probe(20, batch=BatchPolicy("parallel"))
    result = await Flow(node).run(list(range(20)))
    assert result.output == [n * 10 for n in range(20)]
    assert node.max_running == 20


@pytest.mark.parametrize("strategy", ["worker_pool", "parallel"])
async def test_bounded_pool_never_runs_more_than_max_parallel_items(strategy: Any) -> None:
    node = Probe(30, batch=BatchPolicy(strategy, max_parallel=4))
    result = await Flow(node).run(list(range(30)))
    assert result.output == [n * 10 for n in range(30)]
    assert node.max_running == 4


async def test_pool_larger_than_the_batch_runs_every_item_at_once() -> None:
    node = Probe(3, batch=BatchPolicy("worker_pool", max_parallel=10))
    result = await Flow(node).run([0, 1, 2])
    assert result.output == [0, 10, 20]
    assert node.max_running == 3


@pytest.mark.parametrize("prep_res", [None, []])
async def test_a_batch_with_no_items_outputs_an_empty_list(prep_res: Any) -> None:
    result = await Flow(Probe(0, batch=BatchPolicy("parallel"))).run(prep_res)
    assert result.output == []


async def test_post_receives_the_items_and_the_ordered_results() -> None:
    class Summing(Node):
        def prep(self, ctx: Any) -> Any:
            return [1, 2, 3]

        async def exec(self, prep_res: Any) -> Any:
            return prep_res + 100

        def post(self, ctx: Any, prep_res: Any, exec_res: Any) -> str | None:
            ctx.shared["seen"] = (prep_res, exec_res)
            return None

    result = await Flow(Summing(batch=BatchPolicy("parallel"))).run()
    assert result.shared["seen"] == ([1, 2, 3], [101, 102, 103])


@pytest.mark.parametrize("strategy", ["serial", "parallel", "worker_pool"])
async def test_each_item_is_retried_on_its_own(strategy: Any) -> None:
    failures = {1: 2, 3: 1}  # item -> how many times it fails before succeeding
    calls: dict[int, int] = {}

    class Flaky(Node):
        async def exec(self, prep_res: Any) -> Any:
            calls[prep_res] = calls.get(prep_res, 0) + 1
            if calls[prep_res] <= failures.get(prep_res, 0):
                raise RuntimeError(f"item {prep_res}")
            return prep_res

    events: list[NodeEvent] = []
    node = Flaky(batch=BatchPolicy(strategy, max_parallel=2), retry=RetryPolicy(max_retries=2))
    result = await Flow(node).run([0, 1, 2, 3], observer=events.append)
    assert result.output == [0, 1, 2, 3]
    assert calls == {0: 1, 1: 3, 2: 1, 3: 2}
    retrying = sorted((e.item_index, e.attempt) for e in events if e.kind == "retrying")
    assert retrying == [(1, 2), (1, 3), (3, 2)]


async def test_fallback_applies_per_item() -> None:
    class HalfBroken(Node):
        def exec(self, prep_res: Any) -> Any:
            if prep_res % 2:
                raise ValueError(prep_res)
            return prep_res

        def exec_fallback(self, prep_res: Any, exc: BaseException) -> Any:
            return f"odd {exc}"

    result = await Flow(HalfBroken(batch=BatchPolicy("parallel"))).run([0, 1, 2, 3])
    assert result.output == [0, "odd 1", 2, "odd 3"]


@pytest.mark.parametrize("strategy", ["parallel", "worker_pool"])
async def test_first_failing_item_fails_the_node_and_cancels_the_others(strategy: Any) -> None:
    cancelled: list[int] = []
    finished: list[int] = []
    expected = [1, 2] if strategy == "worker_pool" else [1, 2, 3, 4, 5]
    running: list[int] = []
    all_running = asyncio.Event()

    class OneBad(Node):
        async def exec(self, prep_res: Any) -> Any:
            if prep_res == 0:
                await all_running.wait()  # breaks while the others run
                raise RuntimeError("item 0 broke")
            running.append(prep_res)
            if len(running) == len(expected):
                all_running.set()
            try:
                await asyncio.sleep(2 * HANG_GUARD)  # only being cancelled ends it in time
            except asyncio.CancelledError:
                cancelled.append(prep_res)
                raise
            finished.append(prep_res)

    bound = 3 if strategy == "worker_pool" else None
    node = OneBad(node_id="batch", batch=BatchPolicy(strategy, max_parallel=bound))
    with pytest.raises(NodeFailed) as caught:
        async with asyncio.timeout(HANG_GUARD):
            await Flow(node).run(list(range(6)))
    assert str(caught.value.cause) == "item 0 broke"
    assert sorted(cancelled) == expected
    assert finished == []


async def test_serial_batch_stops_at_the_first_failing_item() -> None:
    seen: list[int] = []

    class StopsAtTwo(Node):
        def exec(self, prep_res: Any) -> Any:
            seen.append(prep_res)
            if prep_res == 2:
                raise RuntimeError("two")
            return prep_res

    with pytest.raises(NodeFailed):
        await Flow(StopsAtTwo(batch=BatchPolicy())).run(range(5))
    assert seen == [0, 1, 2]


async def test_blocking_sync_items_run_in_threads_concurrently() -> None:
    threads: set[int] = set()
    # Each item waits for three others to block beside it: items run one at a time would
    # break the barrier (at the hang guard) instead of passing it.
    together = threading.Barrier(4, timeout=HANG_GUARD)

    class Blocking(Node):
        def exec(self, prep_res: Any) -> Any:
            threads.add(threading.get_ident())
            together.wait()
            return prep_res

    node = Blocking(blocking=True, batch=BatchPolicy("worker_pool", max_parallel=4))
    result = await Flow(node).run(range(8))
    assert result.output == list(range(8))
    assert len(threads) >= 4
    assert threading.get_ident() not in threads


async def test_cancelling_the_run_cancels_every_running_item() -> None:
    cancelled: list[int] = []
    started = asyncio.Event()

    class Waits(Node):
        async def exec(self, prep_res: Any) -> Any:
            started.set()
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                cancelled.append(prep_res)
                raise

    task = asyncio.create_task(Flow(Waits(batch=BatchPolicy("parallel"))).run([1, 2, 3]))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert sorted(cancelled) == [1, 2, 3]


@settings(max_examples=60, deadline=None)
@given(
    items=st.lists(st.integers(min_value=0, max_value=4), max_size=25),
    strategy=st.sampled_from(["serial", "parallel", "worker_pool"]),
    bound=st.integers(min_value=1, max_value=6),
)
def test_any_batch_keeps_input_order_and_its_concurrency_bound(
    items: list[int], strategy: Any, bound: int
) -> None:
    class Yields(Node):
        def __init__(self, **kw: Any) -> None:
            super().__init__(**kw)
            self.running = 0
            self.max_running = 0

        async def exec(self, prep_res: Any) -> Any:
            self.running += 1
            self.max_running = max(self.max_running, self.running)
            for _ in range(prep_res):  # items yield a different number of times
                await asyncio.sleep(0)
            self.running -= 1
            return prep_res * 2

    limit = None if strategy == "parallel" else bound
    node = Yields(batch=BatchPolicy(strategy, max_parallel=limit))
    result = asyncio.run(Flow(node).run(items))
    assert result.output == [item * 2 for item in items]
    expected_bound = {"serial": 1, "parallel": len(items), "worker_pool": bound}[strategy]
    assert node.max_running <= max(expected_bound, 1)


class MaybeBatch(Node):
    """A batch node whose prep decides: a list input is the items, anything else runs once."""

    def prep(self, ctx: Any) -> Any:
        from flowrunner.engine import Unbatched

        return ctx.input if isinstance(ctx.input, list) else Unbatched(ctx.input)

    def exec(self, prep_res: Any) -> Any:
        return f"<{prep_res}>"


async def test_a_batch_node_whose_prep_returns_unbatched_runs_exec_once_without_a_list() -> None:
    node = MaybeBatch(batch=BatchPolicy("parallel"))
    assert (await Flow(node).run("one")).output == "<one>"
    assert (await Flow(node).run(["a", "b"])).output == ["<a>", "<b>"]


async def test_an_unbatched_output_is_size_checked_like_a_plain_nodes() -> None:
    seen: list[tuple[str, Any]] = []

    def check(node_id: str, value: Any, total: int) -> int:
        seen.append((node_id, value))
        return total + 1

    node = MaybeBatch(node_id="maybe", batch=BatchPolicy("parallel"))
    await Flow(node).run("one", size_check=check)
    assert seen == [("maybe", "<one>")]
