"""Requests and replies between the server and a sandbox worker, as bytes and as errors.

Everything that crosses is JSON text: the scope is serialised here (dates become ISO strings)
and parsed inside V8; the result is serialised inside V8, size-checked there and in the
worker, and parsed here. The worker's reply statuses map onto the sandbox error family.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from functools import lru_cache
from typing import Any

from flowrunner.errors import SandboxError, ScriptError, ScriptResourceError
from flowrunner.scripting.worker import (
    REQUEST,
    STATUS_ERROR,
    STATUS_OK,
    STATUS_RESOURCE,
    STATUS_VALUE,
)

_IDENTIFIER = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*\Z")
# Names that cannot be bound with `let` in strict code, plus the wrapper's own parameter.
_RESERVED = frozenset(
    {
        "break",
        "case",
        "catch",
        "class",
        "const",
        "continue",
        "debugger",
        "default",
        "delete",
        "do",
        "else",
        "enum",
        "export",
        "extends",
        "false",
        "finally",
        "for",
        "function",
        "if",
        "implements",
        "import",
        "in",
        "instanceof",
        "interface",
        "let",
        "new",
        "null",
        "package",
        "private",
        "protected",
        "public",
        "return",
        "static",
        "super",
        "switch",
        "this",
        "throw",
        "true",
        "try",
        "typeof",
        "var",
        "void",
        "while",
        "with",
        "yield",
        "await",
        "arguments",
        "eval",
        "undefined",
        "NaN",
        "Infinity",
        "__scope",
    }
)


@dataclass(frozen=True, slots=True)
class Reply:
    status: bytes
    flags: int
    payload: bytes


@lru_cache(maxsize=1024)
def scope_names(keys: tuple[str, ...]) -> str:
    """The comma-joined scope keys, each checked to be a bindable JavaScript identifier."""
    for key in keys:
        if not isinstance(key, str) or not _IDENTIFIER.match(key) or key in _RESERVED:
            raise SandboxError(f"scope name {key!r} is not a usable JavaScript variable name")
    return ",".join(keys)


def _to_json(value: Any) -> Any:
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, set | frozenset):
        return list(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"a value of type {type(value).__name__} cannot be passed to a script")


def encode_scope(scope: Mapping[str, Any] | Sequence[Any]) -> bytes:
    """JSON text of ``scope`` (or of any JSON-like data) as UTF-8; it holds no raw newline."""
    try:
        text = json.dumps(
            scope, default=_to_json, ensure_ascii=False, allow_nan=False, separators=(",", ":")
        )
    except (TypeError, ValueError) as exc:
        raise SandboxError(f"the script's data is not JSON-compatible: {exc}") from exc
    try:
        return text.encode()
    except UnicodeEncodeError:
        # A lone surrogate (JSON's "\ud800" parses to one) has no UTF-8 form. Escaped, it
        # reaches the script as the same lone surrogate JavaScript would have.
        escaped = json.dumps(scope, default=_to_json, allow_nan=False, separators=(",", ":"))
        return escaped.encode()


def encode_joined(
    scope: Mapping[str, Any], template: Any, slots: Sequence[tuple[Sequence[str | int], int]]
) -> bytes:
    """The payload of a ``p`` request: the scope, a newline (JSON text has none: newlines
    inside strings are escaped), then the params template and where each value goes."""
    return encode_scope(scope) + b"\n" + encode_scope([template, [[list(p), i] for p, i in slots]])


def encode_request(op: bytes, kind: bytes, names: str, code: str, scope: bytes = b"") -> bytes:
    n, c = names.encode(), code.encode()
    return REQUEST.pack(op, kind, len(n), len(c), len(scope)) + n + c + scope


def script_error(info: Mapping[str, Any], logs: list[Any]) -> ScriptError:
    name, message = info.get("name") or "Error", info.get("message") or ""
    line, column = info.get("line"), info.get("column")
    where = f" (line {line}, column {column})" if line is not None else ""
    return ScriptError(
        f"{name}: {message}{where}",
        line=line,
        column=column,
        error_type=name,
        logs=[{"level": level, "message": text} for level, text in logs] or None,
    )


def decode_reply(reply: Reply) -> dict[str, Any]:
    """The reply's JSON for a value (``l``, ``v``, ``s``); raises for any other status."""
    if reply.status == STATUS_OK:
        return {}
    body: dict[str, Any] = json.loads(reply.payload) if reply.payload else {}
    if reply.status == STATUS_VALUE:
        return body
    if reply.status == STATUS_ERROR:
        raise script_error(body.get("e") or {}, body.get("l") or [])
    if reply.status == STATUS_RESOURCE:
        raise ScriptResourceError(str(body.get("m") or "the script hit a resource limit"))
    raise SandboxError(f"unexpected reply from the sandbox worker: {reply.status!r}")
