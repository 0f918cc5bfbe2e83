"""The input guard's byte-level checks agree with the decoded value, whatever the strings hold
(brackets, quotes, backslashes, escapes) — properties, in-process."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flowrunner.api.input_guard import InputRejected, check_raw, loads_checked

# Strings made of what could fool a scan of the bytes.
_TRICKY = st.text(alphabet='[]{}"\\/u0dDa\n', max_size=8)
_JSON = st.recursive(
    st.one_of(st.none(), st.integers(), _TRICKY),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(_TRICKY, inner, max_size=3)
    ),
    max_leaves=30,
)


def depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((depth(v) for v in value), default=0)
    return 0


def refused(raw: bytes, max_depth: int) -> bool:
    try:
        check_raw(raw, max_depth=max_depth, loc=("body",))
    except InputRejected:
        return True
    return False


def wrapped(value: Any, shells: list[bool]) -> Any:
    for as_list in shells:
        value = [value, "]"] if as_list else {"[k": value, "n": [[]]}
    return value


@settings(max_examples=400, deadline=None, database=None)
@given(
    value=_JSON,
    shells=st.lists(st.booleans(), max_size=16),
    max_depth=st.integers(2, 16),
    ensure_ascii=st.booleans(),
)
def test_the_byte_scan_finds_the_real_depth(
    value: Any, shells: list[bool], max_depth: int, ensure_ascii: bool
) -> None:
    # Shells around the value take it past the first stripping passes to the measuring one.
    value = wrapped(value, shells)
    raw = json.dumps(value, ensure_ascii=ensure_ascii).encode()
    assert refused(raw, max_depth) == (depth(value) > max_depth)


@pytest.mark.parametrize(
    "text",
    [
        '{"a": "\\u0000"}',
        '{"a\\u0000": 1}',
        '["\\ud800"]',
        '["x\\uDFFF"]',
        '{"a": ["\\udc00y"]}',
    ],
)
def test_escaped_nul_and_lone_surrogates_are_refused(text: str) -> None:
    with pytest.raises(InputRejected):
        check_raw(text.encode(), max_depth=64, loc=("body",))


def test_raw_utf8_surrogate_bytes_are_refused() -> None:
    with pytest.raises(InputRejected, match="lone surrogate"):
        check_raw(b'{"k": "a\xed\xa0\x80"}', max_depth=64, loc=("body",))


@pytest.mark.parametrize(
    "text",
    ['"\\\\u0000 is only text"', '"\\ud83d\\ude00"', '"new\\nline \\\\ backslash \\" quote"'],
)
def test_look_alikes_and_surrogate_pairs_pass(text: str) -> None:
    assert loads_checked(text, max_depth=64, loc=("body",)) == json.loads(text)


def test_text_that_is_not_json_is_left_to_its_reader() -> None:
    check_raw(b"{not json", max_depth=64, loc=("body",))
    with pytest.raises(ValueError, match="Expecting"):
        loads_checked("{not json", max_depth=64, loc=("message",))


def test_a_too_deep_body_names_where() -> None:
    with pytest.raises(InputRejected) as refused_:
        check_raw(b'{"input": {"a": [[[1]]]}}', max_depth=4, loc=("body",))
    assert refused_.value.details[0]["loc"] == ["body", "input", "a", 0, 0]
