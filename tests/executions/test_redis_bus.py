"""The Redis pub/sub bus: same topics and ordering as the in-process one, across clients."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from flowrunner.executions import ExecutionService, Topic
from flowrunner.executions.redis_bus import RedisBus
from flowrunner.storage import ExecutionEvent
from tests.conftest import require_service
from tests.executions.conftest import STEPS, Harness


@pytest.fixture
async def redis_bus() -> AsyncIterator[RedisBus]:
    url = require_service("FLOWRUNNER_TEST_REDIS_URL", "Redis")
    # A prefix of its own, so parallel test runs on one server never see each other.
    bus = RedisBus(url, prefix=f"flowrunner-test:{os.getpid()}:{os.urandom(3).hex()}:")
    yield bus
    await bus.close()


def _event(seq: int) -> ExecutionEvent:
    return ExecutionEvent("e1", "a1", seq, "node", {"n": seq}, datetime.now(UTC))


async def test_events_reach_their_topics_in_order(redis_bus: RedisBus) -> None:
    run = await redis_bus.subscribe(Topic("a1", execution_id="e1"))
    flow = await redis_bus.subscribe(Topic("a1", flow_id="f1"))
    other = await redis_bus.subscribe(Topic("a1", flow_id="f2"))
    await redis_bus.publish("f1", [_event(1), _event(2)])
    await redis_bus.publish("f1", [_event(3)])
    got = [await run.next(2) for _ in range(3)]
    assert [e.seq for e in got if e] == [1, 2, 3]
    first = got[0]
    assert first is not None
    assert (first.execution_id, first.account_id, first.type) == ("e1", "a1", "node")
    assert first.created_at.tzinfo is not None
    assert got[2] is not None
    assert got[2].data == {"n": 3}
    assert [e.seq for e in [await flow.next(2) for _ in range(3)] if e] == [1, 2, 3]
    assert await other.next(0.2) is None
    for sub in (run, flow, other):
        await sub.close()


async def test_a_run_followed_over_redis_replays_then_goes_live(
    harness: Harness, redis_bus: RedisBus
) -> None:
    service = ExecutionService(harness.store, harness.executor, redis_bus)
    harness.runner._bus = redis_bus  # the runner publishes where followers listen
    flow_id = await harness.flow(STEPS)
    started = await service.start(harness.account.id, flow_id, {"name": "r"})
    stream = await service.follow(harness.account.id, started.execution.id)
    events = await asyncio.wait_for(_collect(stream), 10)
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert events[-1].type == "complete"
    done = await service.wait(harness.account.id, started.execution.id, within=5)
    assert done.status == "completed"


async def _collect(stream: AsyncIterator[ExecutionEvent]) -> list[ExecutionEvent]:
    return [event async for event in stream]
