"""Brute-force protection for password checks: attempts counted in a sliding window.

Two keys are counted for every attempt: (username, client) and client alone. The first stops
guessing one account's password from one address; the second stops one address spraying many
usernames. A username is never locked on its own: failures from an attacker's address must
not lock the real owner out from theirs.

An attempt counts as a failure from the moment it starts until it is proven right. Counting
only after the (slow, threaded) argon2 check would let a client with many parallel requests
start hundreds of guesses before the first failure is recorded.

In-process by design: with several API processes each one counts its own attempts, so the
effective limit is N x processes; still a hard cap on guessing speed, and no shared state to
run. The clock is injectable so tests move time by hand.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from flowrunner.errors import RateLimited

Key = tuple[str, ...]
# Forget idle keys beyond this many, oldest first, so memory stays bounded under attack.
MAX_KEYS = 100_000


@dataclass(frozen=True, slots=True)
class Attempt:
    """A started password check; pass it to ``succeeded`` when the password was right."""

    username: str
    client: str
    at: float


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

    def attempt(self, username: str, client: str) -> Attempt:
        """Start a check, counted as failed until ``succeeded``; ``RateLimited`` (and
        nothing counted) when this username/client or this client failed too often."""
        now = self._clock()
        keys = self._keys(username, client)
        for key, limit in keys:
            times = self._recent(key, now)
            if len(times) >= limit:
                # Allowed again once the oldest failure that counts leaves the window.
                wait = times[len(times) - limit] + self._window - now
                raise RateLimited(
                    "too many failed login attempts, try again later",
                    retry_after=max(1, math.ceil(wait)),
                )
        for key, _ in keys:
            self._failures[key].append(now)
        self._bound()
        return Attempt(username, client, now)

    def succeeded(self, attempt: Attempt) -> None:
        """The password was right: clear the (username, client) count and take this attempt
        back from the client's count. Other failures of the client stay: an attacker owning
        one account must not reset their budget for guessing others."""
        pair, client = self._keys(attempt.username, attempt.client)
        self._failures.pop(pair[0], None)
        times = self._failures.get(client[0])
        if times is not None and attempt.at in times:
            times.remove(attempt.at)

    def _keys(self, username: str, client: str) -> tuple[tuple[Key, int], tuple[Key, int]]:
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
