"""The event bus over Redis pub/sub, for several API processes and workers.

Same contract as ``InProcessBus``: best effort, live only, per-execution and per-flow topics.
A subscriber that falls behind is marked ``lagged`` and drops events; followers fill any gap
from the store, so Redis never has to be durable. Needs ``pip install 'flowrunner[redis]'``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any

import structlog

from flowrunner.errors import StorageError
from flowrunner.executions.bus import QUEUE_SIZE, Subscription, Topic
from flowrunner.storage import ExecutionEvent

try:
    from redis import asyncio as aioredis
    from redis.exceptions import RedisError
except ModuleNotFoundError as exc:  # pragma: no cover - depends on the install
    raise StorageError("the Redis event bus needs redis: pip install 'flowrunner[redis]'") from exc

PREFIX = "flowrunner:events:"

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


class _RedisSubscription:
    """A Redis subscription drained by a task into a bounded queue."""

    def __init__(self, pubsub: Any) -> None:
        self._pubsub = pubsub
        self._queue: asyncio.Queue[ExecutionEvent] = asyncio.Queue(QUEUE_SIZE)
        self.lagged = False
        self._reader = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        async for message in self._pubsub.listen():
            if message.get("type") != "message":
                continue
            for event in _decode(message["data"]):
                try:
                    self._queue.put_nowait(event)
                except asyncio.QueueFull:
                    self.lagged = True

    async def __aiter__(self) -> AsyncIterator[ExecutionEvent]:
        while True:
            yield await self._queue.get()

    async def next(self, within: float | None = None) -> ExecutionEvent | None:
        try:
            return await asyncio.wait_for(self._queue.get(), within)
        except TimeoutError:
            return None

    async def close(self) -> None:
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, RedisError):
            await self._reader
        with contextlib.suppress(RedisError):
            await self._pubsub.aclose()


class RedisBus:
    def __init__(self, url: str, *, prefix: str = PREFIX) -> None:
        self._redis = aioredis.from_url(url)
        self._prefix = prefix

    def _channel(self, topic: Topic) -> str:
        return self._prefix + topic.key()

    async def publish(self, flow_id: str, events: Sequence[ExecutionEvent]) -> None:
        if not events:
            return
        first = events[0]
        payload = _encode(events)
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.publish(self._channel(Topic(first.account_id, first.execution_id)), payload)
                pipe.publish(self._channel(Topic(first.account_id, flow_id=flow_id)), payload)
                await pipe.execute()
        except RedisError:
            # Live delivery is best effort: the events are stored and followers re-read the
            # store when they see a gap or a quiet spell, so a run never fails for the bus.
            log.warning("event bus publish failed", execution_id=first.execution_id, exc_info=True)

    async def subscribe(self, topic: Topic) -> Subscription:
        pubsub = self._redis.pubsub()
        try:
            await pubsub.subscribe(self._channel(topic))
        except RedisError as exc:
            raise StorageError(f"event bus unavailable: {exc}") from exc
        return _RedisSubscription(pubsub)

    async def close(self) -> None:
        await self._redis.aclose()
