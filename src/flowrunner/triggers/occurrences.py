"""When a schedule is due: the occurrences of a cron expression or an interval in a window.

Cron expressions are evaluated by ``cronsim`` in the schedule's time zone, with its DST rules:
a time that does not exist (spring forward, 02:30 in Europe/Berlin) fires at the first minute
after the gap (03:00); a time that happens twice (fall back) fires once for a daily job, while
an hourly job fires in both hours. Intervals are anchored at the Unix epoch (a ``10m``
schedule fires at :00, :10, :20 ... UTC), so every process computes the same occurrences.
"""

from __future__ import annotations

from collections import deque
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from flowrunner.definition.triggers import ScheduleSpec, cron_sim

MAX_LOOKBACK = timedelta(days=7)
"""Occurrences older than this before ``until`` are never due (so a schedule off for a year
does not walk a year of minutes): catch-up looks back at most a week."""
MAX_CRON_STEPS = 100_000
"""A further bound on the cron occurrences walked per computation."""


def due_between(
    spec: ScheduleSpec, after: datetime, until: datetime, *, keep: int
) -> tuple[list[datetime], int]:
    """The last ``keep`` occurrences in ``(after, until]`` (UTC, oldest first) and how many
    there were in all (within ``MAX_LOOKBACK`` of ``until``)."""
    after = max(after, until - MAX_LOOKBACK)
    if spec.interval is not None:
        step = spec.interval
        first = int(after.timestamp() // step) + 1
        last = int(until.timestamp() // step)
        count = max(0, last - first + 1)
        start = max(first, last - keep + 1)
        return [_utc(k * step) for k in range(start, last + 1)], count
    assert spec.cron is not None
    found: deque[datetime] = deque(maxlen=keep)
    count = 0
    for when in cron_sim(spec.cron, after.astimezone(ZoneInfo(spec.timezone))):
        if when > until or count >= MAX_CRON_STEPS:
            break
        found.append(when.astimezone(UTC))
        count += 1
    return list(found), count


def next_after(spec: ScheduleSpec, after: datetime) -> datetime:
    """The first occurrence strictly after ``after`` (UTC)."""
    if spec.interval is not None:
        step = spec.interval
        return _utc((int(after.timestamp() // step) + 1) * step)
    assert spec.cron is not None
    when: datetime = next(cron_sim(spec.cron, after.astimezone(ZoneInfo(spec.timezone))))
    return when.astimezone(UTC)


def _utc(seconds: float) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=seconds)
