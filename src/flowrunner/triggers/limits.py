"""Per-key sliding-window counters: a trigger's request rate and its failed verifications.

In-process and bounded: at most ``max_keys`` keys are tracked (the least recently used are
forgotten first), each with at most ``limit`` timestamps. With several server processes each
one counts its own share; the limits are per process, as documented.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

from cachetools import LRUCache


class WindowLimiter:
    def __init__(
        self,
        *,
        window: float = 60.0,
        max_keys: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._window = window
        self._clock = clock
        self._hits: LRUCache[str, deque[float]] = LRUCache(maxsize=max_keys)

    def retry_after(self, key: str, limit: int) -> int:
        """Seconds until ``key`` may go again (0: now), without counting a hit."""
        hits = self._hits.get(key)
        if hits is None:
            return 0
        now = self._clock()
        while hits and hits[0] <= now - self._window:
            hits.popleft()
        if len(hits) < limit:
            return 0
        return max(1, int(hits[0] + self._window - now + 0.999))

    def hit(self, key: str, limit: int) -> int:
        """Count one hit; returns ``retry_after`` (0: the hit was allowed and counted)."""
        wait = self.retry_after(key, limit)
        if wait:
            return wait
        hits = self._hits.get(key)
        if hits is None:
            hits = self._hits[key] = deque(maxlen=limit)
        hits.append(self._clock())
        return 0
