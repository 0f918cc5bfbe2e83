from __future__ import annotations

import pytest

from flowrunner.definition import flow_schema, parse_duration
from flowrunner.durations import DURATION_PATTERN


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("500ms", 0.5),
        ("2s", 2.0),
        ("1m", 60.0),
        ("1h", 3600.0),
        ("1m30s", 90.0),
        ("1h2m3s4ms", 3723.004),
        ("1.5s", 1.5),
        (" 3 ", 3.0),
        ("0", 0.0),
        (5, 5.0),
        (0.25, 0.25),
    ],
)
def test_durations_parse_to_seconds(text: str | float, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "bad", ["5x", "", "ms", "1s1m", "1m 30s", "-1", "1e3", -1, True, None, float("inf"), "2 s"]
)
def test_anything_else_is_rejected(bad: object) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(bad)


def test_the_schema_uses_the_same_pattern_as_the_parser() -> None:
    assert flow_schema()["$defs"]["duration"]["pattern"] == DURATION_PATTERN
