"""When schedules are due: cron in a time zone across DST changes, and epoch-anchored
intervals (the behaviour docs/triggers.md promises)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flowrunner.definition.triggers import schedule_spec
from flowrunner.triggers.occurrences import due_between, next_after

BERLIN_SPRING = datetime(2026, 3, 28, 12, tzinfo=UTC)  # DST starts 2026-03-29 02:00 local
BERLIN_AUTUMN = datetime(2026, 10, 24, 12, tzinfo=UTC)  # DST ends 2026-10-25 03:00 local


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def test_a_cron_schedule_fires_in_its_time_zone() -> None:
    spec = schedule_spec("s", {"cron": "0 9 * * *", "timezone": "Europe/Berlin"})
    # 09:00 in Berlin is 08:00 UTC in winter.
    assert next_after(spec, datetime(2026, 1, 5, tzinfo=UTC)) == _utc("2026-01-05T08:00:00+00:00")


def test_a_time_skipped_by_spring_forward_fires_after_the_gap() -> None:
    spec = schedule_spec("s", {"cron": "30 2 * * *", "timezone": "Europe/Berlin"})
    due, count = due_between(spec, BERLIN_SPRING, BERLIN_SPRING + timedelta(days=2), keep=10)
    # 02:30 does not exist on 2026-03-29: it fires at 03:00 CEST (01:00 UTC) that day.
    assert due == [_utc("2026-03-29T03:00:00+02:00"), _utc("2026-03-30T02:30:00+02:00")]
    assert count == 2


def test_a_repeated_hour_fires_a_daily_job_once_and_an_hourly_job_twice() -> None:
    daily = schedule_spec("d", {"cron": "30 2 * * *", "timezone": "Europe/Berlin"})
    due, _ = due_between(daily, BERLIN_AUTUMN, BERLIN_AUTUMN + timedelta(days=1), keep=10)
    assert due == [_utc("2026-10-25T02:30:00+02:00")]
    hourly = schedule_spec("h", {"cron": "0 * * * *", "timezone": "Europe/Berlin"})
    start = _utc("2026-10-25T01:30:00+02:00")
    due, _ = due_between(hourly, start, start + timedelta(hours=3), keep=10)
    assert due == [
        _utc("2026-10-25T02:00:00+02:00"),
        _utc("2026-10-25T02:00:00+01:00"),  # the same wall time an hour later
        _utc("2026-10-25T03:00:00+01:00"),
    ]


def test_interval_occurrences_are_anchored_at_the_epoch() -> None:
    spec = schedule_spec("i", {"interval": "10m"})
    start = datetime(2026, 1, 1, 0, 3, tzinfo=UTC)
    due, count = due_between(spec, start, start + timedelta(minutes=30), keep=2)
    assert count == 3  # 00:10, 00:20, 00:30; the last two kept
    assert due == [datetime(2026, 1, 1, 0, 20, tzinfo=UTC), datetime(2026, 1, 1, 0, 30, tzinfo=UTC)]
    assert next_after(spec, start) == datetime(2026, 1, 1, 0, 10, tzinfo=UTC)


def test_catch_up_looks_back_at_most_a_week() -> None:
    spec = schedule_spec("m", {"cron": "* * * * *"})
    until = datetime(2026, 6, 1, tzinfo=UTC)
    due, count = due_between(spec, until - timedelta(days=365), until, keep=3)
    assert count == 7 * 24 * 60
    assert due[-1] == until
