"""Brute-force protection for password checks: failures counted in a sliding window.

Two keys are counted for every failure: (username, client) and client alone. The first stops
guessing one account's password from one address; the second stops one address spraying many
usernames. A username is never locked on its own: failures from an attacker's address must
not lock the real owner out from theirs.

In-process by design: with several API processes each one counts its own failures, so the
effective limit is N x processes; still a hard cap on guessing speed, and no shared state to
run. The clock is injectable so tests move time by hand.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable

from flowrunner.errors import RateLimited

Key = tuple[str, ...]
# Forget idle keys beyond this many, oldest first, so memory stays bounded under attack.
MAX_KEYS = 100_000


class LoginLimiter:
    def __init__(
        self,
        *,
        max_failures: int = 5,
        max_failures_per_client: int = 20,
        window_seconds: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._max_pair = max_failures
        self._max_client = max_failures_per_client
        self._window = window_seconds
        self._clock = clock
        self._failures: dict[Key, deque[float]] = {}

    def check(self, username: str, client: str) -> None:
        """Raise ``RateLimited`` if this attempt must not even be tried."""
        now = self._clock()
        for key, limit in self._limits(username, client):
            times = self._recent(key, now)
            if len(times) >= limit:
                # Allowed again once the oldest failure that counts leaves the window.
                wait = times[len(times) - limit] + self._window - now
                raise RateLimited(
                    "too many failed login attempts, try again later",
                    retry_after=max(1, math.ceil(wait)),
                )

    def failed(self, username: str, client: str) -> None:
        now = self._clock()
        for key, _ in self._limits(username, client):
            self._recent(key, now).append(now)
        self._bound()

    def succeeded(self, username: str, client: str) -> None:
        """A correct password clears the (username, client) count, not the client's: an
        attacker owning one account must not reset their budget for guessing others."""
        self._failures.pop(("pair", username.casefold(), client), None)

    def _limits(self, username: str, client: str) -> tuple[tuple[Key, int], ...]:
        return (
            (("pair", username.casefold(), client), self._max_pair),
            (("client", client), self._max_client),
        )

    def _recent(self, key: Key, now: float) -> deque[float]:
        times = self._failures.setdefault(key, deque())
        while times and times[0] <= now - self._window:
            times.popleft()
        return times

    def _bound(self) -> None:
        if len(self._failures) <= MAX_KEYS:
            return
        now = self._clock()
        for key in [k for k, t in self._failures.items() if not self._recent(k, now)]:
            del self._failures[key]
        while len(self._failures) > MAX_KEYS:
            del self._failures[next(iter(self._failures))]
