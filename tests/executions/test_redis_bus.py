"""The Redis pub/sub bus: same topics and ordering as the in-process one, across clients."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime

import pytest
from redis import asyncio as aioredis

from flowrunner.executions import ExecutionService, Subscription, Topic
from flowrunner.executions.bus import BusHealth
from flowrunner.executions.redis_bus import RedisBus
from flowrunner.storage import ExecutionEvent
from tests.conftest import require_service
from tests.executions.conftest import STEPS, Harness
from tests.redis_server import RedisServer, redis_server


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


async def test_a_message_that_is_not_an_event_is_skipped_and_the_link_stays_up() -> None:
    url = require_service("FLOWRUNNER_TEST_REDIS_URL", "Redis")
    prefix = f"flowrunner-test:{os.getpid()}:{os.urandom(3).hex()}:"
    bus = RedisBus(url, prefix=prefix)
    writer = aioredis.from_url(url)
    try:
        subscription = await bus.subscribe(Topic("a1", execution_id="e1"))
        await writer.publish(prefix + "execution:a1:e1", b"not json")
        await writer.publish(prefix + "execution:a1:e1", b'[["e1", "a1", 1]]')
        await bus.publish("f1", [_event(1)])
        got = await subscription.next(10)
        assert got is not None
        assert got.seq == 1
        assert subscription.live
        await subscription.close()
    finally:
        await writer.aclose()
        await bus.close()


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


# --- when Redis fails: a server of the test's own, paused (SIGSTOP) or stopped ------------------

TIMEOUT = 0.3  # the bus's bound on each Redis call: short, so the tests see failures soon


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    with redis_server() as server:
        yield server


@pytest.fixture
async def own_bus(own_redis: RedisServer) -> AsyncIterator[RedisBus]:
    bus = RedisBus(own_redis.url, timeout=TIMEOUT, buffer=10)
    yield bus
    await bus.close()


async def _until(check: Callable[[], bool]) -> None:
    """Wait for ``check`` to hold (a hang guard, not a deadline under test)."""
    async with asyncio.timeout(30):
        # Polling: the state is the bus's own, with no event to wait on from outside.
        while not check():  # noqa: ASYNC110
            await asyncio.sleep(0.02)


async def test_publishing_to_a_hung_redis_returns_at_once_and_counts_what_it_drops(
    own_redis: RedisServer, own_bus: RedisBus
) -> None:
    own_redis.pause()
    async with asyncio.timeout(30):  # hang guard: each publish must not wait for Redis
        for seq in range(1, 51):
            await own_bus.publish("f1", [_event(seq)])
    # 10 fit the outbox, 40 are dropped at once; the 10 time out and are dropped too.
    assert own_bus.health().dropped_events >= 40
    await _until(lambda: own_bus.health().dropped_events == 50)
    assert own_bus.health().connected is False


async def test_publishing_recovers_once_a_hung_redis_answers_again(
    own_redis: RedisServer, own_bus: RedisBus
) -> None:
    listener = await own_bus.subscribe(Topic("a1", execution_id="e1"))
    own_redis.pause()
    await own_bus.publish("f1", [_event(1)])
    await _until(lambda: own_bus.health().dropped_events == 1)
    own_redis.resume()
    await _until(lambda: listener.live)
    # Published until one arrives: the publisher may still be in its retry pause.
    async with asyncio.timeout(30):
        seq = 2
        while (got := await listener.next(0.2)) is None:
            await own_bus.publish("f1", [_event(seq)])
            seq += 1
    assert got.seq >= 2
    assert own_bus.health().connected is True


async def test_a_subscription_to_a_hung_redis_says_it_is_not_live_then_resumes(
    own_redis: RedisServer, own_bus: RedisBus
) -> None:
    subscription = await own_bus.subscribe(Topic("a1", execution_id="e1"))
    assert subscription.live
    own_redis.pause()
    # The quiet link is probed; with no answer the subscription wakes its reader, not live.
    async with asyncio.timeout(30):
        while await subscription.next(1.0) is not None:
            pass
    await _until(lambda: not subscription.live)
    assert own_bus.health().subscriptions_live == 0
    own_redis.resume()
    await _until(lambda: subscription.live)
    assert await subscription.next(0) is None  # the wake-up: events may have been missed
    await _publish_until_received(own_bus, subscription)
    await subscription.close()
    assert own_bus.health().subscriptions == 0


async def test_subscribing_while_redis_is_down_succeeds_and_goes_live_when_it_is_back(
    own_redis: RedisServer, own_bus: RedisBus
) -> None:
    own_redis.stop()
    subscription = await own_bus.subscribe(Topic("a1", flow_id="f1"))
    assert not subscription.live
    assert own_bus.health() == BusHealth("redis", False, 0, 1, 0)
    own_redis.start()  # the same port
    await _until(lambda: subscription.live)
    await _publish_until_received(own_bus, subscription)
    assert own_bus.health().connected is True
    await subscription.close()


async def _publish_until_received(bus: RedisBus, subscription: Subscription) -> None:
    """Publish until the subscription receives: the publisher may still be pausing after a
    failure, in which case a publish is dropped (and counted) and the next one goes out."""
    seq = 1
    async with asyncio.timeout(30):
        while True:
            await bus.publish("f1", [_event(seq)])
            got = await subscription.next(0.5)
            if got is not None:
                assert got.execution_id == "e1"
                return
            seq += 1
