"""Measuring a run's data as JSON without copying it, and the caps built on the measure."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flowrunner import jsontext
from flowrunner.errors import SizeLimitExceeded
from flowrunner.executions.sizes import RunLimits, json_size, measured_copy

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text() | st.floats(allow_nan=False),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=30,
)


@given(json_values)
def test_the_size_of_json_data_is_the_length_of_its_compact_json_text(value: Any) -> None:
    text = jsontext.dumps(value)
    assert json_size(value, 1 << 30) == len(text.encode())


def test_non_json_values_are_measured_as_the_text_they_are_stored_as() -> None:
    value = {"when": datetime(2026, 1, 1, tzinfo=UTC), 3: (1, 2)}
    assert json_size(value, 1 << 20) == len(jsontext.dumps(value, default=str))


@pytest.mark.parametrize(
    "item",
    [[f"i{n:03}" for n in range(1000)], "x" * 7000],
    ids=["a list", "a long string"],
)
def test_a_value_referenced_many_times_counts_each_time_and_the_walk_stops_at_the_limit(
    item: Any,
) -> None:
    fan = {"fan": [item] * 1000}  # one value, a thousand references: ~7 MB as JSON
    full = json_size(fan, 1 << 30)
    assert full == len(jsontext.dumps(fan))
    stopped = json_size(fan, 100_000)
    assert 100_000 < stopped < full
    size, copy = measured_copy(fan, 100_000)
    assert (size, copy) == (stopped, None)


@given(json_values)
def test_a_measured_copy_is_the_json_round_trip_with_its_size(value: Any) -> None:
    expected = (len(jsontext.dumps(value).encode()), jsontext.copy(value))
    assert measured_copy(value, 1 << 30) == expected


def test_an_output_over_the_cap_names_the_node_the_limit_and_the_setting() -> None:
    limits = RunLimits(node_output=1000, shared=1000, checkpoint=1000)
    assert limits.check_output("n", "x" * 500, 0) == 502
    with pytest.raises(SizeLimitExceeded) as raised:
        limits.check_output("n", "x" * 500, 502)
    assert raised.value.node_id == "n"
    assert raised.value.code == "size_limit_exceeded"
    assert "1000 bytes" in str(raised.value)
    assert "FLOWRUNNER_MAX_NODE_OUTPUT_BYTES" in str(raised.value)


def test_shared_state_over_its_cap_is_refused() -> None:
    limits = RunLimits(node_output=1000, shared=1000, checkpoint=10_000)
    assert limits.shared_copy({"a": 1}, "n") == (7, {"a": 1})
    with pytest.raises(SizeLimitExceeded, match=r"shared state.*FLOWRUNNER_MAX_SHARED_BYTES"):
        limits.shared_copy({"a": "x" * 1000}, "n")


def test_a_checkpoint_is_copied_part_by_part_and_refused_once_the_total_passes_the_cap() -> None:
    limits = RunLimits(node_output=1000, shared=1000, checkpoint=1000)
    copied = limits.checkpoint_parts([("a", [1, 2]), ("b", "x"), ("c", None)], 100, "b")
    assert copied == {"a": [1, 2], "b": "x", "c": None}
    with pytest.raises(SizeLimitExceeded, match=r"checkpoint.*FLOWRUNNER_MAX_CHECKPOINT_BYTES"):
        limits.checkpoint_parts([("a", "x" * 600), ("b", "y" * 600)], 0, "b")
