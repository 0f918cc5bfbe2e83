"""When a failed delivery is tried again: the published retry schedule, jitter, Retry-After.

The schedule is the delay before each retry (``FLOWRUNNER_WEBHOOK_RETRY_SCHEDULE``, by default
5s, 5m, 30m, 2h, 5h, 10h, 10h: eight attempts over at most about 28 hours). Each delay is
"full jitter" (AWS's name for it): drawn uniformly from ``[0, d]``. Deliveries that failed
together — a receiver's outage — then come back spread over the whole step instead of in a
burst at its end, which is what lets a recovering receiver stay up; the step is the upper
bound, and the drawn time is in each attempt's ``next_attempt_at``. A receiver's
``Retry-After`` lengthens a delay (never shortens it), up to the schedule's longest step.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from flowrunner.durations import parse_duration

# 408 Request Timeout, 409 Conflict and 429 Too Many Requests say "later", not "never".
RETRIED_CLIENT_ERRORS = frozenset({408, 409, 429})
MAX_STEPS = 50


def parse_schedule(text: str) -> tuple[float, ...]:
    """Seconds of each retry delay; ValueError naming the bad entry."""
    steps: list[float] = []
    for raw in text.split(","):
        entry = raw.strip()
        if not entry:
            continue
        try:
            seconds = parse_duration(entry)
        except ValueError as exc:
            raise ValueError(f"FLOWRUNNER_WEBHOOK_RETRY_SCHEDULE: {exc}") from None
        steps.append(seconds)
    if len(steps) > MAX_STEPS:
        raise ValueError(f"FLOWRUNNER_WEBHOOK_RETRY_SCHEDULE: at most {MAX_STEPS} steps")
    return tuple(steps)


def is_retryable(status_code: int | None) -> bool:
    """Network errors and timeouts (no status), 408/409/429 and 5xx are tried again."""
    return status_code is None or status_code >= 500 or status_code in RETRIED_CLIENT_ERRORS


def retry_after_seconds(header: str | None, now: datetime) -> float | None:
    """``Retry-After`` as seconds from ``now``: delta-seconds or an HTTP date."""
    if not header:
        return None
    text = header.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


@dataclass(frozen=True, slots=True)
class RetrySchedule:
    steps: Sequence[float]
    uniform: Callable[[float, float], float] = field(default=random.uniform)

    @property
    def max_attempts(self) -> int:
        return len(self.steps) + 1

    def delay(self, attempts: int, retry_after: float | None = None) -> float | None:
        """Seconds to wait after the ``attempts``-th failed attempt; None: dead-letter it."""
        if attempts > len(self.steps):
            return None
        step = self.steps[attempts - 1]
        wait = self.uniform(0.0, step)
        if retry_after is not None:
            wait = max(wait, min(retry_after, max(self.steps)))
        return wait
