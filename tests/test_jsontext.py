"""jsontext: orjson's speed without refusing anything the standard library accepted."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime

import pytest

from flowrunner import jsontext


def test_round_trips_plain_json_compactly_in_utf8() -> None:
    value = {"name": "Zoë", "n": [1, 2.5, None, True], "nested": {"k": "v"}}
    text = jsontext.dumps(value)
    assert text == '{"name":"Zoë","n":[1,2.5,null,true],"nested":{"k":"v"}}'
    assert jsontext.loads(text) == value
    assert jsontext.loads(text.encode()) == value


def test_integers_past_64_bits_fall_back_to_the_standard_library() -> None:
    big = {"n": 2**70}
    assert jsontext.loads(jsontext.dumps(big)) == big
    assert jsontext.copy(big) == big


def test_non_string_keys_become_text_as_with_json() -> None:
    assert jsontext.copy({1: "a", None: "b"}) == json.loads(json.dumps({1: "a", None: "b"}))


def test_not_json_raises_type_error_and_default_converts() -> None:
    with pytest.raises(TypeError):
        jsontext.dumps({"s": {1, 2}})
    assert jsontext.copy({"s": {1}}, default=str) == {"s": "{1}"}
    stamp = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert jsontext.copy({"t": stamp}, default=str) == {"t": "2026-01-02T03:04:05+00:00"}


def test_nan_is_written_as_null_and_old_nan_text_still_reads() -> None:
    assert jsontext.dumps({"x": math.nan}) == '{"x":null}'
    assert math.isnan(jsontext.loads('{"x": NaN}')["x"])
    with pytest.raises(json.JSONDecodeError):
        jsontext.loads("{not json")


def test_lone_surrogates_are_written_as_escapes_and_read_back_unchanged() -> None:
    value = {"s": "a\ud800b", "k\udfff": ["\U0001f600", "nul\x00"]}
    text = jsontext.dumps(value)
    assert text.isascii()  # valid UTF-8 for any database or driver
    text.encode("utf-8")
    assert jsontext.loads(text) == value
    assert jsontext.copy(value) == value


def test_a_well_formed_copy_replaces_only_lone_surrogates() -> None:
    value = {"s": "a\ud800b", "pair": "\ud83d\ude00", "k\udfff": ["ok", 1]}
    assert jsontext.copy(value, well_formed=True) == {
        "s": "a\ufffdb",
        "pair": "\U0001f600",
        "k\ufffd": ["ok", 1],
    }
    assert jsontext.has_lone_surrogate(value)
    assert not jsontext.has_lone_surrogate({"s": "\U0001f600 text", "n": [1, None]})


@pytest.mark.parametrize(
    ("text", "depth", "deeper"),
    [
        (b"[[1]]", 2, False),
        (b"[[1]]", 1, True),
        (b'{"a": "[[[[[[", "b": {"c": []}}', 3, False),
        (b'{"a": "\\"[[[[", "b": [{}]}', 2, True),
        (b'{"a": "x\\\\", "b": "[[[", "c": "]]"}', 1, False),
        (b"[" * 300 + b"]" * 300, 200, True),
        (b"[" * 200 + b"]" * 200, 200, False),
    ],
)
def test_deeper_than_reads_depth_from_the_text_outside_strings(
    text: bytes, depth: int, deeper: bool
) -> None:
    assert jsontext.deeper_than(text, depth) is deeper
