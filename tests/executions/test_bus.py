"""The in-process bus: per-execution and per-flow topics, and lag instead of blocking."""

from __future__ import annotations

from datetime import UTC, datetime

from flowrunner.executions import InProcessBus, Topic
from flowrunner.executions.live_queue import QUEUE_SIZE
from flowrunner.storage import ExecutionEvent


def _event(seq: int, execution_id: str = "e1", account_id: str = "a1") -> ExecutionEvent:
    return ExecutionEvent(execution_id, account_id, seq, "node", {}, datetime.now(UTC))


async def test_events_reach_their_execution_and_flow_topics_only() -> None:
    bus = InProcessBus()
    run = await bus.subscribe(Topic("a1", execution_id="e1"))
    flow = await bus.subscribe(Topic("a1", flow_id="f1"))
    other_flow = await bus.subscribe(Topic("a1", flow_id="f2"))
    other_account = await bus.subscribe(Topic("a2", flow_id="f1"))
    await bus.publish("f1", [_event(1), _event(2)])
    assert [(await run.next(0.1)).seq for _ in range(2)] == [1, 2]  # type: ignore[union-attr]
    assert [(await flow.next(0.1)).seq for _ in range(2)] == [1, 2]  # type: ignore[union-attr]
    assert await other_flow.next(0.05) is None
    assert await other_account.next(0.05) is None


async def test_a_slow_subscriber_is_marked_lagged_instead_of_blocking_publishers() -> None:
    bus = InProcessBus()
    slow = await bus.subscribe(Topic("a1", execution_id="e1"))
    await bus.publish("f1", [_event(i) for i in range(1, QUEUE_SIZE + 5)])
    assert slow.lagged


async def test_closed_subscriptions_receive_nothing() -> None:
    bus = InProcessBus()
    sub = await bus.subscribe(Topic("a1", execution_id="e1"))
    await sub.close()
    await bus.publish("f1", [_event(1)])
    assert await sub.next(0.05) is None
    assert bus._subscribers == {}
