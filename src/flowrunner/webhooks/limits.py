"""What keeps one slow receiver from stalling the rest: a per-endpoint concurrency cap and a
process-wide rate limit (a token bucket), both in memory, per dispatcher."""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable

MAX_TRACKED_ENDPOINTS = 10_000


class EndpointSlots:
    """At most ``per_endpoint`` sends in flight to one endpoint."""

    def __init__(self, per_endpoint: int) -> None:
        self._per_endpoint = per_endpoint
        self._slots: OrderedDict[str, asyncio.Semaphore] = OrderedDict()

    def for_endpoint(self, endpoint_id: str) -> asyncio.Semaphore:
        slot = self._slots.get(endpoint_id)
        if slot is None:
            slot = self._slots[endpoint_id] = asyncio.Semaphore(self._per_endpoint)
            if len(self._slots) > MAX_TRACKED_ENDPOINTS:  # forget an idle one (bounded)
                for key, old in list(self._slots.items()):
                    if not old.locked() and key != endpoint_id:
                        del self._slots[key]
                        break
        self._slots.move_to_end(endpoint_id)
        return slot


class RateLimiter:
    """A token bucket: ``rate`` sends per second on average, bursts of up to ``rate``."""

    def __init__(self, rate: float, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._rate = rate
        self._capacity = max(1.0, rate)
        self._tokens = self._capacity
        self._monotonic = monotonic
        self._last = monotonic()
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        async with self._lock:  # waiters are served in order
            while True:
                now = self._monotonic()
                self._tokens = min(self._capacity, self._tokens + (now - self._last) * self._rate)
                self._last = now
                if self._tokens >= 1:
                    self._tokens -= 1
                    return
                await asyncio.sleep((1 - self._tokens) / self._rate)
