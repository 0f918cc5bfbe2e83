"""The bounded queue behind every event-bus subscription, in-process or over Redis.

A subscriber that cannot keep up loses live events, never the history: the queue drops what
does not fit and says so (``lagged``); the follower sees the gap in sequence numbers and
re-reads the store. ``None`` is a wake-up, not an event: the transport went down or came back
(events may have been missed), so ``next`` returns it and iteration skips it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from flowrunner.storage import ExecutionEvent

QUEUE_SIZE = 1000


class LiveQueue:
    """Live events in publish order, at most ``QUEUE_SIZE`` waiting."""

    __slots__ = ("_queue", "lagged")

    def __init__(self) -> None:
        self._queue: asyncio.Queue[ExecutionEvent | None] = asyncio.Queue(QUEUE_SIZE)
        self.lagged = False

    def offer(self, event: ExecutionEvent | None) -> None:
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            self.lagged = True

    async def __aiter__(self) -> AsyncIterator[ExecutionEvent]:
        while True:
            event = await self._queue.get()
            if event is not None:
                yield event

    async def next(self, within: float | None = None) -> ExecutionEvent | None:
        if not self._queue.empty():  # no timer task when an event is already waiting
            return self._queue.get_nowait()
        try:
            async with asyncio.timeout(within):
                return await self._queue.get()
        except TimeoutError:
            return None
