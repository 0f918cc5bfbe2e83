"""Observer events: started/finished/failed/retrying with timings, and Context.log."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

from flowrunner.engine import Context, Flow, Node, NodeEvent, RetryPolicy
from flowrunner.errors import NodeFailed


class Sleep(Node):
    async def exec(self, prep_res: Any) -> Any:
        await asyncio.sleep(0.01)
        return f"{self.node_id}:{prep_res}"

    def post(self, ctx: Context, prep_res: Any, exec_res: Any) -> str | None:
        return "next"


async def test_each_node_emits_started_then_finished_with_timing_output_and_route() -> None:
    a = Sleep(node_id="a")
    a - "next" >> Sleep(node_id="b")
    events: list[NodeEvent] = []
    before = time.time()
    began = time.perf_counter()
    await Flow(a).run(1, observer=events.append)
    took = time.perf_counter() - began
    after = time.time()

    assert [(e.kind, e.node_id) for e in events] == [
        ("started", "a"),
        ("finished", "a"),
        ("started", "b"),
        ("finished", "b"),
    ]
    assert all(before <= e.time <= after for e in events)
    assert [e.time for e in events] == sorted(e.time for e in events)
    finished_a, finished_b = events[1], events[3]
    assert (finished_a.output, finished_a.action, finished_a.next_node_id) == ("a:1", "next", "b")
    assert (finished_b.output, finished_b.next_node_id) == ("b:a:1", None)
    assert finished_a.duration is not None
    assert finished_b.duration is not None
    # Seconds, of the node alone: at least its sleep, within the run around it (no upper
    # bound of its own: a busy machine makes any step slow).
    assert finished_a.duration >= 0.01
    assert finished_a.duration + finished_b.duration <= took
    assert finished_a.attempt == 1
    assert all(e.flow_path == () for e in events)


async def test_a_failing_node_emits_failed_with_the_error_and_attempt_count() -> None:
    class Broken(Node):
        def exec(self, prep_res: Any) -> Any:
            raise RuntimeError("nope")

    node = Broken(node_id="broken", retry=RetryPolicy(max_retries=2))
    node - "error" >> Node(node_id="handler")
    events: list[NodeEvent] = []
    await Flow(node).run(observer=events.append)
    kinds = [(e.kind, e.node_id, e.attempt) for e in events]
    assert kinds == [
        ("started", "broken", 1),
        ("retrying", "broken", 2),
        ("retrying", "broken", 3),
        ("failed", "broken", 3),
        ("started", "handler", 1),
        ("finished", "handler", 1),
    ]
    failed = events[3]
    assert str(failed.error) == "nope"
    assert (failed.action, failed.next_node_id) == ("error", "handler")
    assert failed.duration is not None


async def test_a_failure_without_error_edge_is_emitted_before_the_run_raises() -> None:
    class Broken(Node):
        def exec(self, prep_res: Any) -> Any:
            raise RuntimeError("nope")

    events: list[NodeEvent] = []
    with pytest.raises(NodeFailed):
        await Flow(Broken()).run(observer=events.append)
    assert [e.kind for e in events] == ["started", "failed"]
    assert events[-1].next_node_id is None


async def test_events_inside_a_sub_flow_carry_the_sub_flow_path() -> None:
    inner = Flow(Flow(Node(node_id="leaf"), node_id="inner"), node_id="outer")
    events: list[NodeEvent] = []
    await Flow(inner).run(observer=events.append)
    assert [(e.kind, e.node_id, e.flow_path) for e in events] == [
        ("started", "outer", ()),
        ("started", "inner", ("outer",)),
        ("started", "leaf", ("outer", "inner")),
        ("finished", "leaf", ("outer", "inner")),
        ("finished", "inner", ("outer",)),
        ("finished", "outer", ()),
    ]


async def test_context_log_emits_a_log_event_for_the_current_node() -> None:
    class Chatty(Node):
        def prep(self, ctx: Context) -> Any:
            ctx.log("fetching", url="https://example.test")
            return ctx.input

        def post(self, ctx: Context, prep_res: Any, exec_res: Any) -> str | None:
            ctx.log("slow answer", level="warning", seconds=3)
            return None

    events: list[NodeEvent] = []
    await Flow(Flow(Chatty(node_id="chatty"), node_id="sub")).run(observer=events.append)
    logs = [e for e in events if e.kind == "log"]
    assert [(e.node_id, e.message, e.level, dict(e.fields or {})) for e in logs] == [
        ("chatty", "fetching", "info", {"url": "https://example.test"}),
        ("chatty", "slow answer", "warning", {"seconds": 3}),
    ]
    assert all(e.flow_path == ("sub",) for e in logs)


async def test_logging_without_an_observer_is_a_harmless_no_op() -> None:
    class Chatty(Node):
        def exec(self, prep_res: Any) -> Any:
            return "ran"

        def prep(self, ctx: Context) -> Any:
            ctx.log("nobody listens")
            return None

    result = await Flow(Chatty()).run()
    assert result.output == "ran"


async def test_logs_from_a_blocking_node_reach_the_observer_on_the_loop_thread_in_order() -> None:
    loop_thread = threading.get_ident()

    class Blocking(Node):
        def prep(self, ctx: Context) -> Any:
            ctx.log("from a worker thread", thread=threading.get_ident())
            return None

    observed: list[tuple[str, bool]] = []
    await Flow(Blocking(blocking=True)).run(
        observer=lambda e: observed.append((e.kind, threading.get_ident() == loop_thread))
    )
    assert observed == [("started", True), ("log", True), ("finished", True)]
