"""Scope encoding, name checks and reply decoding, without a worker."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from flowrunner.errors import SandboxError, ScriptError, ScriptResourceError
from flowrunner.scripting.codec import Reply, decode_reply, encode_scope, scope_names
from flowrunner.scripting.worker import STATUS_ERROR, STATUS_RESOURCE, STATUS_VALUE


def test_scope_names_join_valid_identifiers() -> None:
    assert scope_names(("input", "shared", "$x", "_y1")) == "input,shared,$x,_y1"


@pytest.mark.parametrize("name", ["a-b", "class", "eval", "", "1a", "a b"])
def test_scope_names_reject_what_let_cannot_bind(name: str) -> None:
    with pytest.raises(SandboxError, match="variable name"):
        scope_names((name,))


def test_encode_scope_turns_python_values_into_json() -> None:
    scope = {
        "when": datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC),
        "day": date(2024, 1, 2),
        "money": Decimal("1.25"),
        "raw": b"\x00\xff",
        "tags": {"only"},
        "text": "ünïcode",
    }
    assert json.loads(encode_scope(scope)) == {
        "when": "2024-01-02T03:04:05+00:00",
        "day": "2024-01-02",
        "money": 1.25,
        "raw": "AP8=",
        "tags": ["only"],
        "text": "ünïcode",
    }


def test_encode_scope_rejects_unknown_objects_and_nan() -> None:
    with pytest.raises(SandboxError, match="type object"):
        encode_scope({"x": object()})
    with pytest.raises(SandboxError, match="JSON-compatible"):
        encode_scope({"x": float("inf")})


def test_decode_value_reply() -> None:
    body = decode_reply(Reply(STATUS_VALUE, 0, b'{"l":[],"v":[1,2],"s":{"a":1}}'))
    assert body == {"l": [], "v": [1, 2], "s": {"a": 1}}


def test_decode_error_reply_raises_script_error_with_position_and_logs() -> None:
    payload = {
        "e": {"name": "TypeError", "message": "x is null", "line": 3, "column": 7},
        "l": [["warn", "about to fail"]],
    }
    with pytest.raises(ScriptError) as info:
        decode_reply(Reply(STATUS_ERROR, 0, json.dumps(payload).encode()))
    assert str(info.value) == "TypeError: x is null (line 3, column 7)"
    assert (info.value.line, info.value.column) == (3, 7)
    assert info.value.context["logs"] == [{"level": "warn", "message": "about to fail"}]


def test_decode_resource_reply_raises_resource_error() -> None:
    with pytest.raises(ScriptResourceError, match="too big"):
        decode_reply(Reply(STATUS_RESOURCE, 0, b'{"m": "too big"}'))


def test_decode_unknown_status_is_a_sandbox_error() -> None:
    with pytest.raises(SandboxError, match="unexpected reply"):
        decode_reply(Reply(b"?", 0, b""))
