"""The event bus over Redis pub/sub, for several API processes and workers.

Same contract as ``InProcessBus``: best effort, live only, per-execution and per-flow topics.
A subscriber that falls behind is marked ``lagged`` and drops events; followers fill any gap
from the store, so Redis never has to be durable. Redis being down or hung never holds up a
run (publishing is queued and bounded) and never fails a subscription (it reconnects, see
``redis_subscription``). Needs ``pip install 'flowrunner[redis]'``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import structlog

from flowrunner.errors import StorageError
from flowrunner.executions.bus import BusHealth, Subscription, Topic, topics_of
from flowrunner.storage import ExecutionEvent

try:
    from redis import asyncio as aioredis
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff
except ModuleNotFoundError as exc:  # pragma: no cover - depends on the install
    raise StorageError("the Redis event bus needs redis: pip install 'flowrunner[redis]'") from exc

from flowrunner.executions.redis_subscription import (
    FIRST_RETRY_SECONDS,
    MAX_RETRY_SECONDS,
    LinkErrors,
    RedisSubscription,
)

PREFIX = "flowrunner:events:"
DEFAULT_TIMEOUT = 2.0
DEFAULT_BUFFER = 1000  # batches of events (one per store write) waiting to be published
PIPELINE_BATCHES = 500  # batches sent in one round trip (at most)
LOG_EVERY_SECONDS = 10.0

log = structlog.get_logger("flowrunner.executions")


def _encode(events: Sequence[ExecutionEvent]) -> str:
    return json.dumps(
        [
            [e.execution_id, e.account_id, e.seq, e.type, e.data, e.created_at.isoformat()]
            for e in events
        ],
        separators=(",", ":"),
        default=str,
    )


def _decode(payload: bytes | str) -> list[ExecutionEvent]:
    return [
        ExecutionEvent(ex, account, seq, kind, data, datetime.fromisoformat(at))
        for ex, account, seq, kind, data, at in json.loads(payload)
    ]


@dataclass(frozen=True, slots=True)
class _Outgoing:
    channels: tuple[str, str]
    payload: str
    count: int


class RedisBus:
    """Publishes through a bounded outbox drained by one task; subscribes with reconnection.

    ``publish`` only encodes and queues, so a run never waits for Redis: the publisher task
    sends queued batches in pipelines, each bounded by ``timeout``. What does not fit the
    outbox, and a send Redis refused or did not answer in time (with all that was queued
    behind it), is dropped and counted (``health()``, and a warning at most every
    ``LOG_EVERY_SECONDS`` with the count): the events are stored, and followers fill the gap
    from the store.
    """

    def __init__(
        self,
        url: str,
        *,
        prefix: str = PREFIX,
        timeout: float = DEFAULT_TIMEOUT,
        buffer: int = DEFAULT_BUFFER,
    ) -> None:
        # No retries inside redis-py: a call fails within ``timeout`` and the bus decides what
        # to do (drop, or reconnect with backoff) instead of a client retrying a hung server.
        self._redis = aioredis.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
        )
        self._prefix = prefix
        self._timeout = timeout
        self._buffer = buffer
        self._outbox: deque[_Outgoing] = deque()
        self._queued = asyncio.Event()
        self._drained = asyncio.Event()
        self._publisher: asyncio.Task[None] | None = None
        self._subscriptions: set[RedisSubscription] = set()  # the open ones
        self._connected = True  # until a call says otherwise
        self._dropped = 0
        self._unlogged = 0
        self._logged_at = -LOG_EVERY_SECONDS

    def _channel(self, topic: Topic) -> str:
        return self._prefix + topic.key()

    def health(self) -> BusHealth:
        live = sum(1 for subscription in self._subscriptions if subscription.live)
        return BusHealth(
            "redis",
            self._connected,
            self._dropped,
            subscriptions=len(self._subscriptions),
            subscriptions_live=live,
        )

    # --- publishing ------------------------------------------------------------------------

    async def publish(self, flow_id: str, events: Sequence[ExecutionEvent]) -> None:
        if not events:
            return
        if len(self._outbox) >= self._buffer:
            self._drop(len(events), "publish buffer full")
            return
        execution, flow = topics_of(flow_id, events[0])
        channels = (self._channel(execution), self._channel(flow))
        self._outbox.append(_Outgoing(channels, _encode(events), len(events)))
        self._drained.clear()
        self._queued.set()
        if self._publisher is None or self._publisher.done():
            self._publisher = asyncio.get_running_loop().create_task(self._publish_queued())

    async def _publish_queued(self) -> None:
        delay = FIRST_RETRY_SECONDS
        while True:
            await self._queued.wait()
            self._queued.clear()
            while self._outbox:
                take = min(len(self._outbox), PIPELINE_BATCHES)
                batch = [self._outbox.popleft() for _ in range(take)]
                try:
                    async with asyncio.timeout(self._timeout):
                        async with self._redis.pipeline(transaction=False) as pipe:
                            for item in batch:
                                for channel in item.channels:
                                    pipe.publish(channel, item.payload)
                            await pipe.execute()
                except LinkErrors as exc:
                    # What waits behind the failed batch would only go out late and in vain
                    # (its followers read it from the store meanwhile): dropped with it.
                    batch += self._outbox
                    self._outbox.clear()
                    self._drop(sum(item.count for item in batch), repr(exc))
                    self._link(False)
                    # Meanwhile the outbox fills up to its bound, then drops what comes.
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, MAX_RETRY_SECONDS)
                else:
                    self._link(True)
                    delay = FIRST_RETRY_SECONDS
            self._drained.set()

    def _drop(self, count: int, reason: str) -> None:
        self._dropped += count
        self._unlogged += count
        now = time.monotonic()
        if now - self._logged_at >= LOG_EVERY_SECONDS:
            self._logged_at = now
            self._log_dropped(reason)

    def _log_dropped(self, reason: str) -> None:
        log.warning(
            "event bus dropped live events (they are stored; followers read the store)",
            dropped=self._unlogged,
            dropped_total=self._dropped,
            reason=reason,
        )
        self._unlogged = 0

    def _link(self, up: bool) -> None:
        if up == self._connected:
            return
        self._connected = up
        if up:
            log.info("event bus reconnected", dropped_total=self._dropped)
            if self._unlogged:
                self._log_dropped("while Redis was unavailable")
        else:
            log.warning("event bus lost Redis: live events are dropped until it answers")

    # --- subscribing -----------------------------------------------------------------------

    async def subscribe(self, topic: Topic) -> Subscription:
        subscription = RedisSubscription(
            self._redis.pubsub,
            self._channel(topic),
            _decode,
            timeout=self._timeout,
            on_link=self._link,
            registry=self._subscriptions,
        )
        if self._connected:
            # Wait until Redis confirms, so what is published from now on is delivered; while
            # Redis is known to be down, return at once (the follower reads the store).
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._timeout * 2):
                    await subscription.first_attempt.wait()
        return subscription

    async def close(self) -> None:
        """Send what is queued (within the timeout), then stop, subscriptions too."""
        for subscription in list(self._subscriptions):
            await subscription.close()
        if self._publisher is not None:
            if not self._drained.is_set():
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._timeout):
                        await self._drained.wait()
            self._publisher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._publisher
        with contextlib.suppress(*LinkErrors):
            await self._redis.aclose()
