"""The retry schedule: parsing the setting, jittered delays, Retry-After, what is retried."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from flowrunner.webhooks.retries import (
    RetrySchedule,
    is_retryable,
    parse_schedule,
    retry_after_seconds,
)

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_default_schedule_parses_to_seconds() -> None:
    assert parse_schedule("5s,5m,30m,2h,5h,10h,10h") == (5, 300, 1800, 7200, 18000, 36000, 36000)


def test_bad_entry_is_named() -> None:
    with pytest.raises(ValueError, match=r"FLOWRUNNER_WEBHOOK_RETRY_SCHEDULE.*'5 parsecs'"):
        parse_schedule("5s, 5 parsecs")


def test_delays_are_full_jitter_up_to_each_step_then_dead_letter() -> None:
    lowest = RetrySchedule((1.0, 10.0), uniform=lambda lo, hi: lo)
    highest = RetrySchedule((1.0, 10.0), uniform=lambda lo, hi: hi)
    assert [lowest.delay(n) for n in (1, 2)] == [0.0, 0.0]
    assert [highest.delay(n) for n in (1, 2)] == [1.0, 10.0]
    assert highest.delay(3) is None  # the third failure was the last attempt
    assert highest.max_attempts == 3


def test_default_jitter_spreads_over_the_whole_step() -> None:
    schedule = RetrySchedule((100.0,))
    draws = [schedule.delay(1) for _ in range(2000)]
    assert all(d is not None and 0.0 <= d <= 100.0 for d in draws)
    # Full jitter, not [d/2, d]: a good share of draws falls in the lower half (p < 1e-300
    # of seeing none of 2000 there by chance).
    assert sum(1 for d in draws if d is not None and d < 50.0) > 0


def test_retry_after_lengthens_a_delay_up_to_the_longest_step() -> None:
    schedule = RetrySchedule((1.0, 10.0), uniform=lambda lo, hi: hi)
    assert schedule.delay(1, retry_after=4) == 4
    assert schedule.delay(1, retry_after=3600) == 10.0
    assert schedule.delay(2, retry_after=1) == 10.0


def test_retry_after_as_seconds_or_http_date() -> None:
    assert retry_after_seconds("120", NOW) == 120
    assert retry_after_seconds("Thu, 01 Jan 2026 00:01:00 GMT", NOW) == 60
    assert retry_after_seconds("soon", NOW) is None
    assert retry_after_seconds(None, NOW) is None


@pytest.mark.parametrize(
    ("status", "retried"),
    [(None, True), (500, True), (503, True), (429, True), (408, True), (409, True),
     (400, False), (401, False), (404, False), (410, False), (302, False)],
)  # fmt: skip
def test_what_is_retried(status: int | None, retried: bool) -> None:
    assert is_retryable(status) is retried
