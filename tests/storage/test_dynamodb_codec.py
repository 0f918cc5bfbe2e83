"""The DynamoDB backend's pure parts: attribute codec, sortable keys, key ranges, expressions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from flowrunner.storage.dynamodb.codec import (
    decode,
    encode,
    from_item,
    parse_ts,
    time_key,
    to_item,
    ts,
)
from flowrunner.storage.dynamodb.expr import Expr
from flowrunner.storage.dynamodb.flows import time_range
from flowrunner.storage.dynamodb.paging import SortRange


def test_timestamps_are_fixed_width_so_string_order_is_time_order() -> None:
    base = datetime(2026, 1, 1, tzinfo=UTC)
    moments = [base, base + timedelta(microseconds=1), base + timedelta(seconds=1, hours=30)]
    texts = [ts(m) for m in moments]
    assert len({len(t) for t in texts}) == 1
    assert texts == sorted(texts)
    assert [parse_ts(t) for t in texts] == moments


def test_other_time_zones_and_naive_datetimes_are_stored_as_utc() -> None:
    paris = datetime(2026, 6, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))
    assert ts(paris) == "2026-06-01T12:00:00.000000Z"
    assert ts(datetime(2026, 6, 1, 12, 0)) == ts(paris)


def test_time_keys_order_like_created_then_id_tuples() -> None:
    t = datetime(2026, 1, 1, tzinfo=UTC)
    pairs = [(t, "b"), (t, "a"), (t + timedelta(milliseconds=1), "a"), (t, "ab")]
    assert sorted(pairs) == sorted(pairs, key=lambda p: time_key(*p))


@pytest.mark.parametrize(
    "value", ["text", "", 0, -7, 2**53 + 1, 0.25, True, False, b"\x00\xff", ["a", "b"], None]
)
def test_attribute_values_round_trip(value: object) -> None:
    assert decode(encode(value)) == value
    assert type(decode(encode(value))) is type(value)


def test_unsupported_values_are_refused() -> None:
    with pytest.raises(TypeError):
        encode({"a": 1})


def test_none_fields_are_left_out_of_items() -> None:
    item = to_item({"a": 1, "b": None})
    assert item == {"a": {"N": "1"}}
    assert from_item(item) == {"a": 1}


def test_created_range_is_inclusive_below_and_exclusive_above() -> None:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    t1 = t0 + timedelta(seconds=1)
    window = time_range(t0, t1)
    assert window.contains(time_key(t0, "x"))
    assert window.contains(time_key(t1 - timedelta(microseconds=1), "x"))
    assert not window.contains(time_key(t1, "x"))
    assert time_range(t1, t0).is_empty()


def test_sort_range_builds_the_matching_key_condition() -> None:
    values: dict[str, object] = {}
    assert SortRange(prefix="K#a").condition("sk", values) == " AND begins_with(sk, :prefix)"
    assert values == {":prefix": "K#a"}
    assert SortRange(lo="a", hi="b").condition("sk", {}) == " AND sk BETWEEN :lo AND :hi"
    assert SortRange().condition("sk", {}) == ""
    assert not SortRange(prefix="K#a").contains("K#b")


def test_expressions_use_placeholders_for_reserved_words_and_values() -> None:
    expr = Expr().set("name", "n").set("status", None).set_fields({"data": 1, "skip": None})
    condition = expr.eq("status", "queued")
    assert expr.update == "SET #name = :v0, #data = :v1 REMOVE #status"
    assert condition == "#status = :v2"
    assert expr.names == {"#name": "name", "#status": "status", "#data": "data"}
    assert expr.values == {":v0": "n", ":v1": 1, ":v2": "queued"}
