"""Node: sync/async/blocking hooks, retries with backoff, fallback, timeouts and wiring."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

from flowrunner.engine import BatchPolicy, Context, Flow, Node, NodeEvent, RetryPolicy
from flowrunner.errors import NodeFailed, NodeTimeout
from tests.conftest import HANG_GUARD


class Flaky(Node):
    """Fails its first ``failures`` exec calls, then returns its input doubled."""

    def __init__(self, failures: int, **kw: Any) -> None:
        super().__init__(**kw)
        self.failures = failures
        self.calls = 0  # a test probe; the engine itself never writes to a node

    def exec(self, prep_res: Any) -> Any:
        self.calls += 1
        if self.calls <= self.failures:
            raise RuntimeError(f"boom {self.calls}")
        return prep_res * 2


async def run_one(node: Node, value: Any = None) -> tuple[Any, list[NodeEvent]]:
    events: list[NodeEvent] = []
    result = await Flow(node).run(value, observer=events.append)
    return result.output, events


async def test_sync_hooks_run_inline_on_the_event_loop_thread() -> None:
    seen: list[int] = []

    class Inline(Node):
        def prep(self, ctx: Context) -> Any:
            seen.append(threading.get_ident())
            return ctx.input

        def exec(self, prep_res: Any) -> Any:
            seen.append(threading.get_ident())
            return prep_res + 1

        def post(self, ctx: Context, prep_res: Any, exec_res: Any) -> str | None:
            seen.append(threading.get_ident())
            return None

    output, _ = await run_one(Inline(), 1)
    assert output == 2
    assert seen == [threading.get_ident()] * 3


async def test_async_hooks_are_awaited_and_may_mix_with_sync_ones() -> None:
    class Mixed(Node):
        def prep(self, ctx: Context) -> Any:
            return ctx.input + 1

        async def exec(self, prep_res: Any) -> Any:
            await asyncio.sleep(0)
            return prep_res * 10

        async def post(self, ctx: Context, prep_res: Any, exec_res: Any) -> str | None:
            ctx.shared["post"] = (prep_res, exec_res)
            return "done"

    result = await Flow(Mixed()).run(1)
    assert (result.output, result.action, result.shared) == (20, "done", {"post": (2, 20)})


def test_hook_kinds_are_detected_once_per_class() -> None:
    class AsyncExec(Node):
        async def exec(self, prep_res: Any) -> Any:
            return prep_res

    class Child(AsyncExec):
        def post(self, ctx: Context, prep_res: Any, exec_res: Any) -> str | None:
            return None

    assert AsyncExec._async_hooks == frozenset({"exec"})
    assert Child._async_hooks == frozenset({"exec"})
    assert Node._async_hooks == frozenset()


async def test_blocking_sync_hooks_run_in_a_worker_thread_without_stalling_the_loop() -> None:
    threads: list[int] = []
    blocked = threading.Event()
    loop_ran = threading.Event()

    class Sleepy(Node):
        def exec(self, prep_res: Any) -> Any:
            threads.append(threading.get_ident())
            blocked.set()
            # Blocks until the loop has ticked meanwhile: a stalled loop never lets it go.
            return "slept" if loop_ran.wait(HANG_GUARD) else "the loop stalled"

    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while not blocked.is_set():  # noqa: ASYNC110 - set from exec's thread
            await asyncio.sleep(0.005)
        for _ in range(5):
            await asyncio.sleep(0.005)
            ticks += 1
        loop_ran.set()

    tick_task = asyncio.create_task(ticker())
    output, _ = await run_one(Sleepy(blocking=True))
    await tick_task
    assert output == "slept"
    assert len(threads) == 1
    assert threads[0] != threading.get_ident()
    assert ticks == 5  # the loop kept running while exec blocked in its thread


async def test_default_prep_hands_exec_the_input_and_the_output_is_exec_result() -> None:
    class Upper(Node):
        def exec(self, prep_res: Any) -> Any:
            return prep_res.upper()

    result = await Flow(Upper(node_id="up")).run("abc")
    assert (result.output, result.results, result.last_node_id) == ("ABC", {"up": "ABC"}, "up")


def test_node_id_defaults_to_the_class_name() -> None:
    class FetchOrders(Node):
        pass

    assert FetchOrders().node_id == "FetchOrders"
    assert FetchOrders(node_id="fetch").node_id == "fetch"


async def test_exec_is_retried_until_it_succeeds_with_retrying_events() -> None:
    node = Flaky(2, retry=RetryPolicy(max_retries=3))
    output, events = await run_one(node, 5)
    assert output == 10
    assert node.calls == 3
    retrying = [e for e in events if e.kind == "retrying"]
    assert [e.attempt for e in retrying] == [2, 3]
    assert [str(e.error) for e in retrying] == ["boom 1", "boom 2"]
    assert events[-1].kind == "finished"
    assert events[-1].attempt == 3


async def test_only_exec_is_retried_never_prep_or_post() -> None:
    counts = {"prep": 0, "post": 0}

    class Counting(Flaky):
        def prep(self, ctx: Context) -> Any:
            counts["prep"] += 1
            return ctx.input

        def post(self, ctx: Context, prep_res: Any, exec_res: Any) -> str | None:
            counts["post"] += 1
            return None

    await run_one(Counting(2, retry=RetryPolicy(max_retries=2)), 1)
    assert counts == {"prep": 1, "post": 1}


async def test_fixed_wait_sleeps_between_attempts() -> None:
    node = Flaky(2, retry=RetryPolicy(max_retries=2, wait=0.02))
    started = time.perf_counter()
    await run_one(node, 1)
    assert time.perf_counter() - started >= 0.04


async def test_exponential_backoff_waits_grow_and_stop_at_the_cap() -> None:
    policy = RetryPolicy(max_retries=4, wait=0.001, backoff="exponential", max_wait=0.003)
    _, events = await run_one(Flaky(4, retry=policy), 1)
    waits = [e.fields["wait"] for e in events if e.kind == "retrying" and e.fields]
    assert waits == [0.001, 0.002, 0.003, 0.003]


async def test_an_error_with_retry_after_waits_at_least_that_long_before_the_retry() -> None:
    class Throttled(Exception):
        retry_after = 0.005  # what an API's Retry-After said (an llm node's rate limit)

    class RateLimited(Flaky):
        def exec(self, prep_res: Any) -> Any:
            self.calls += 1
            if self.calls == 1:
                raise Throttled("slow down")
            if self.calls == 2:
                raise RuntimeError("no hint")
            return prep_res

    policy = RetryPolicy(max_retries=2, wait=0.001)
    _, events = await run_one(RateLimited(0, retry=policy), 1)
    waits = [e.fields["wait"] for e in events if e.kind == "retrying" and e.fields]
    assert waits == [0.005, 0.001]  # the hint when longer than the policy's wait; else the wait


async def test_fallback_receives_prep_result_and_last_error_and_supplies_the_output() -> None:
    seen: list[tuple[Any, str]] = []

    class WithFallback(Flaky):
        def exec_fallback(self, prep_res: Any, exc: BaseException) -> Any:
            seen.append((prep_res, str(exc)))
            return "fallback"

    output, events = await run_one(WithFallback(9, retry=RetryPolicy(max_retries=1)), 7)
    assert output == "fallback"
    assert seen == [(7, "boom 2")]
    assert events[-1].kind == "finished"


async def test_async_fallback_is_awaited() -> None:
    class AsyncFallback(Flaky):
        async def exec_fallback(self, prep_res: Any, exc: BaseException) -> Any:
            await asyncio.sleep(0)
            return f"recovered from {exc}"

    output, _ = await run_one(AsyncFallback(1), 1)
    assert output == "recovered from boom 1"


async def test_default_fallback_reraises_so_the_run_fails_with_the_cause() -> None:
    with pytest.raises(NodeFailed) as caught:
        await Flow(Flaky(5, node_id="flaky", retry=RetryPolicy(max_retries=1))).run(3)
    assert caught.value.node_id == "flaky"
    assert str(caught.value.cause) == "boom 2"
    assert caught.value.data == 3


async def test_exec_exceeding_its_timeout_is_retried_then_raises_node_timeout() -> None:
    attempts = 0

    class Slow(Node):
        async def exec(self, prep_res: Any) -> Any:
            nonlocal attempts
            attempts += 1
            await asyncio.sleep(2 * HANG_GUARD)  # only the node's timeout ends it in time

    node = Slow(node_id="slow", timeout=0.01, retry=RetryPolicy(max_retries=1))
    with pytest.raises(NodeFailed) as caught:
        async with asyncio.timeout(HANG_GUARD):
            await Flow(node).run()
    assert attempts == 2
    assert isinstance(caught.value.cause, NodeTimeout)
    assert caught.value.cause.node_id == "slow"
    assert caught.value.cause.seconds == 0.01


async def test_timeout_also_bounds_a_sync_exec() -> None:
    release = threading.Event()
    finished = threading.Event()

    class SyncSlow(Node):
        def exec(self, prep_res: Any) -> Any:
            release.wait(HANG_GUARD)  # a thread cannot be interrupted: it is let go below
            finished.set()

    try:
        with pytest.raises(NodeFailed) as caught:
            await Flow(SyncSlow(timeout=0.02)).run()
        assert not finished.is_set()  # the flow did not wait for the thread to end
    finally:
        release.set()
    assert isinstance(caught.value.cause, NodeTimeout)


async def test_a_timeout_error_raised_by_exec_itself_is_not_reported_as_node_timeout() -> None:
    class RaisesTimeout(Node):
        async def exec(self, prep_res: Any) -> Any:
            raise TimeoutError("socket read timed out")

    with pytest.raises(NodeFailed) as caught:
        await Flow(RaisesTimeout(timeout=5)).run()
    assert type(caught.value.cause) is TimeoutError


async def test_fallback_can_handle_a_timeout() -> None:
    class SlowWithFallback(Node):
        async def exec(self, prep_res: Any) -> Any:
            await asyncio.sleep(2 * HANG_GUARD)  # only the node's timeout ends it in time

        def exec_fallback(self, prep_res: Any, exc: BaseException) -> Any:
            return type(exc).__name__

    async with asyncio.timeout(HANG_GUARD):
        output, _ = await run_one(SlowWithFallback(timeout=0.01))
    assert output == "NodeTimeout"


def test_wiring_operators_connect_actions_and_return_the_target() -> None:
    a, b, c = Node(node_id="a"), Node(node_id="b"), Node(node_id="c")
    assert (a >> b) is b
    assert (a - "error" >> c) is c
    assert dict(a.successors) == {"default": b, "error": c}
    assert a.connect(b) is b  # re-wiring the same edge is harmless


def test_an_action_cannot_be_rewired_to_a_different_node() -> None:
    a = Node(node_id="a")
    a >> Node(node_id="b")
    with pytest.raises(ValueError, match="already follows 'default' to 'b'"):
        a >> Node(node_id="c")


def test_successors_are_read_only() -> None:
    node = Node()
    with pytest.raises(TypeError):
        node.successors["default"] = Node()  # type: ignore[index]


@pytest.mark.parametrize("action", ["", 3])
def test_an_action_must_be_a_non_empty_string(action: Any) -> None:
    with pytest.raises((ValueError, TypeError)):
        Node() - action >> Node()


def test_timeout_must_be_positive() -> None:
    with pytest.raises(ValueError, match="timeout"):
        Node(timeout=0)


async def test_blocking_node_runs_every_sync_hook_in_a_thread_but_async_ones_on_the_loop() -> None:
    loop_thread = threading.get_ident()
    where: dict[str, bool] = {}

    class Mixed(Node):
        def prep(self, ctx: Context) -> Any:
            where["prep"] = threading.get_ident() == loop_thread
            return ctx.input

        async def exec(self, prep_res: Any) -> Any:
            where["exec"] = threading.get_ident() == loop_thread
            return prep_res

        def post(self, ctx: Context, prep_res: Any, exec_res: Any) -> str | None:
            where["post"] = threading.get_ident() == loop_thread
            return None

    await run_one(Mixed(blocking=True), 1)
    assert where == {"prep": False, "exec": True, "post": False}


async def test_a_run_leaves_the_node_definition_unchanged() -> None:
    class Work(Node):
        async def exec(self, prep_res: Any) -> Any:
            return prep_res

    node = Work(retry=RetryPolicy(max_retries=1), batch=BatchPolicy("parallel"), timeout=1)
    node >> Node(node_id="next")
    slots = [name for cls in type(node).__mro__ for name in getattr(cls, "__slots__", ())]

    def snapshot() -> dict[str, Any]:
        state = {name: getattr(node, name) for name in slots}
        state["_successors"] = dict(node._successors)
        return {**state, **vars(node)}

    before = snapshot()
    await Flow(node).run([1, 2, 3], shared={"x": 1})
    assert snapshot() == before


def test_policies_are_read_only_after_construction() -> None:
    node = Node(timeout=1.0, retry=RetryPolicy(max_retries=2))
    assert (node.timeout, node.retry.max_retries, node.batch, node.blocking) == (
        1.0,
        2,
        None,
        False,
    )
    with pytest.raises(AttributeError):
        node.timeout = 5.0  # type: ignore[misc]
