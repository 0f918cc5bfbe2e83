"""Cursors: round trips, and rejection of anything a store did not produce."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from flowrunner.storage.pagination import (
    InvalidCursor,
    clamp_limit,
    decode_cursor,
    decode_time_cursor,
    encode_cursor,
)


def test_time_cursor_round_trips() -> None:
    when = datetime(2026, 5, 1, 12, 30, 0, 123456, tzinfo=UTC)
    assert decode_time_cursor(encode_cursor(when, "abc")) == (when, "abc")


def test_key_cursor_round_trips_strings_and_ints() -> None:
    assert decode_cursor(encode_cursor("a\x00b", 7), 2) == ["a\x00b", 7]


@pytest.mark.parametrize("bad", ["", "%%%", encode_cursor("only-one"), "eyJhIjoxfQ"])
def test_malformed_cursors_are_invalid(bad: str) -> None:
    with pytest.raises(InvalidCursor):
        decode_time_cursor(bad)


def test_limits_are_clamped() -> None:
    assert (clamp_limit(0), clamp_limit(10), clamp_limit(10**9)) == (1, 10, 1000)
