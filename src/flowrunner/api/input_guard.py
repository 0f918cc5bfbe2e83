"""The API's one check of what clients send: JSON depth and text every store can hold.

Two kinds of input got past the models and failed later as a 500:

- **Deep JSON.** Parsing 100k nested arrays raises ``RecursionError``; 900 levels parse, are
  stored, and then break every listing that serializes them again. JSON deeper than
  ``FLOWRUNNER_MAX_JSON_DEPTH`` levels is refused before any route sees it.
- **Text a database cannot hold.** PostgreSQL refuses NUL (``\\u0000``) in text and JSON, and
  no UTF-8 column can store a lone UTF-16 surrogate (``\\ud800``): the write, or a later read,
  fails. Such characters are refused in every JSON string and key, in the path and in the
  query string (NUL only: the query string is decoded with replacement, so a surrogate cannot
  come through it).

The request middleware (``api.middleware``) applies both to every HTTP request (JSON bodies,
including the ones routes read themselves) and answers ``400 invalid_input`` naming where the
bad value is; the WebSocket route decodes its messages with ``loads_checked``. Bodies are
checked from their bytes, at C speed, without being decoded a second time: the depth from the
brackets outside strings, the text by looking for the bytes a NUL or a surrogate needs. Only
a body that may hold bad text is decoded here, and walked.
"""

from __future__ import annotations

import json
import re
from typing import Any

from starlette.types import Scope

from flowrunner import jsontext
from flowrunner.api.errors import ApiError

# What a JSON text must contain to hold a surrogate: its escape, or its UTF-8 bytes (json.loads
# decodes bytes with "surrogatepass", so those come through). Searched only after a plain
# find says one may be there: an alternation that starts at every backslash is slow on text
# full of "\n" escapes.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_SURROGATE_BYTES = re.compile(rb"\xed[\xa0-\xbf]")
_BAD_CHAR = re.compile("[\x00\ud800-\udfff]")


class InputRejected(ApiError):
    """A value no route should receive: 400 ``invalid_input`` with where it is."""

    def __init__(self, message: str, loc: tuple[str | int, ...]) -> None:
        super().__init__(
            400,
            message,
            code="invalid_input",
            details=[{"loc": list(loc), "message": message}],
        )


def check_text(value: str, loc: tuple[str | int, ...]) -> None:
    """Refuse text with a NUL or a lone surrogate (no store can keep it as given)."""
    bad = _BAD_CHAR.search(value)
    if bad is None:
        return
    char = bad.group()
    what = "a NUL character" if char == "\x00" else f"a lone surrogate (U+{ord(char):04X})"
    where = ".".join(str(part) for part in loc)
    raise InputRejected(f"{where}: text must not contain {what}", loc)


def check_json(value: Any, *, max_depth: int, loc: tuple[str | int, ...] = ("body",)) -> None:
    """Walk a decoded JSON value: at most ``max_depth`` levels of arrays and objects, and
    every string and key free of NUL and lone surrogates. Iterative: depth cannot hurt it."""
    check_depth(value, max_depth=max_depth, loc=loc)
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(value, loc)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, str):
            check_text(item, where)
        elif isinstance(item, dict):
            for key, child in item.items():
                key_loc = (*where, _shown(key))
                check_text(key, key_loc)
                stack.append((child, key_loc))
        elif isinstance(item, list):
            stack.extend((child, (*where, i)) for i, child in enumerate(item))


def check_depth(value: Any, *, max_depth: int, loc: tuple[str | int, ...] = ("body",)) -> None:
    """At most ``max_depth`` levels of arrays and objects. Level by level, keeping only the
    containers (most of a large body is scalars); the path is looked for only on failure."""
    level = [value] if isinstance(value, dict | list) else []
    for _ in range(max_depth):
        below: list[Any] = []
        for item in level:
            children = item.values() if isinstance(item, dict) else item
            below.extend([c for c in children if isinstance(c, dict | list)])
        if not below:
            return
        level = below
    raise _too_deep(max_depth, _deep_path(value, max_depth, loc))


def _deep_path(value: Any, max_depth: int, loc: tuple[str | int, ...]) -> tuple[str | int, ...]:
    stack: list[tuple[Any, int, tuple[str | int, ...]]] = [(value, 1, loc)]
    while stack:
        item, depth, where = stack.pop()
        if depth > max_depth:
            return where
        pairs = item.items() if isinstance(item, dict) else enumerate(item)
        for key, child in pairs:
            if isinstance(child, dict | list):
                stack.append(
                    (child, depth + 1, (*where, _shown(key) if isinstance(key, str) else key))
                )
    return loc


def _shown(key: str) -> str:
    """A key as the error may quote it: its bad characters escaped (the response must be
    encodable), and short."""
    shown = _BAD_CHAR.sub(lambda m: f"\\u{ord(m.group()):04x}", key)
    return shown if len(shown) <= 64 else shown[:61] + "..."


def check_raw(raw: bytes, *, max_depth: int, loc: tuple[str | int, ...]) -> None:
    """Check JSON text without decoding it where its bytes allow: its depth from the brackets
    outside strings, its strings only when a NUL or surrogate may be in them (then decoded and
    walked). ``InputRejected`` if it fails; text that is not JSON passes (its reader says so).
    """
    if jsontext.deeper_than(raw, max_depth):
        raise _too_deep(max_depth, _deep_path_of(raw, max_depth, loc))
    if _may_hold_bad_text(raw):
        try:
            value = json.loads(raw)
        except ValueError:
            return
        check_json(value, max_depth=max_depth, loc=loc)


def _deep_path_of(raw: bytes, max_depth: int, loc: tuple[str | int, ...]) -> tuple[str | int, ...]:
    """Where text found too deep goes too deep (only on failure: it decodes the text)."""
    try:
        return _deep_path(json.loads(raw), max_depth, loc)
    except (ValueError, RecursionError):
        return loc


def _may_hold_bad_text(raw: bytes) -> bool:
    if b"\x00" in raw or b"\\u0000" in raw:
        return True
    if (b"\\ud" in raw or b"\\uD" in raw) and _SURROGATE_ESCAPE.search(raw):
        return True
    return b"\xed" in raw and _SURROGATE_BYTES.search(raw) is not None


def loads_checked(raw: str | bytes, *, max_depth: int, loc: tuple[str | int, ...]) -> Any:
    """Check, then decode JSON text; ``InputRejected`` as ``check_raw``, ``ValueError`` if it
    is not JSON at all."""
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    check_raw(data, max_depth=max_depth, loc=loc)
    return json.loads(data)


def _too_deep(max_depth: int, loc: tuple[str | int, ...]) -> InputRejected:
    return InputRejected(f"JSON is nested deeper than {max_depth} levels", loc)


def is_json(content_type: str | None) -> bool:
    # FastAPI decodes a body without a Content-Type as JSON, so that one is checked as well.
    if not content_type:
        return True
    kind = content_type.split(";")[0].strip().lower()
    return kind == "application/json" or (
        kind.startswith("application/") and kind.endswith("+json")
    )


def check_url(scope: Scope) -> None:
    """``InputRejected`` for a NUL in the path or the query string."""
    if "\x00" in scope.get("path", ""):
        raise InputRejected("the path must not contain a NUL character", ("path",))
    query: bytes = scope.get("query_string", b"")
    if b"%00" in query or b"\x00" in query:
        raise InputRejected("the query string must not contain a NUL character", ("query",))
