"""JSON text on the hot paths: orjson where it can, the standard library where it cannot.

Every run writes its events and checkpoints as JSON text and detaches its payloads with a JSON
round trip; with the standard library's encoder that was about a sixth of a run's CPU. orjson
does the same 5-10x faster. The standard library stays as the fallback for what orjson refuses
(integers past 64 bits, text holding ``NaN``), so no value that was accepted before is refused
now.

Differences from ``json.dumps`` worth knowing: the text is compact UTF-8 (no spaces, no
``\\u`` escapes), ``NaN``/``Infinity`` become ``null`` (valid JSON, as PostgreSQL and browsers
require), and datetimes, dataclasses and UUIDs are encoded natively (ISO 8601, objects, text)
instead of going through ``default``.
"""

from __future__ import annotations

import json
import operator
import re
from collections.abc import Callable
from itertools import accumulate, count
from typing import Any

import orjson

_OPTIONS = orjson.OPT_NON_STR_KEYS
# A NUL escape that is not an escaped backslash followed by "u0000" (an even run of
# backslashes before it), and a lone surrogate as the standard library writes it.
_NUL_ESCAPE = re.compile(r"(?<!\\)((?:\\\\)*)\\u0000")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def dumps(value: Any, *, default: Callable[[Any], Any] | None = None) -> str:
    """``value`` as JSON text; ``TypeError``/``ValueError`` if it is not JSON.

    The text is one every store can hold: a NUL (PostgreSQL refuses it in text and JSON) or a
    lone surrogate (no UTF-8 store can keep one) in a string becomes U+FFFD, the same on every
    backend, rather than failing the write of whatever a run produced.
    """
    try:
        return _storable(orjson.dumps(value, default=default, option=_OPTIONS).decode())
    except orjson.JSONEncodeError:
        # Raises the standard library's own TypeError/ValueError when the value really is
        # not JSON; encodes it when orjson merely declines (a big integer, a surrogate, depth).
        text = json.dumps(value, default=default, ensure_ascii=False, separators=(",", ":"))
        return _storable(_LONE_SURROGATE.sub("\ufffd", text))


def _storable(text: str) -> str:
    # A plain find first: this runs on every payload, the substitution almost never.
    return _NUL_ESCAPE.sub(r"\1\\ufffd", text) if "\\u0000" in text else text


def loads(text: str | bytes) -> Any:
    """The value of JSON ``text``; ``ValueError`` if it is not JSON."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)  # NaN/Infinity tokens older rows may hold


def copy(value: Any, *, default: Callable[[Any], Any] | None = None) -> Any:
    """A detached, JSON-safe copy of ``value`` (a round trip through JSON text), with text
    every store can hold (see ``dumps``)."""
    try:
        text = orjson.dumps(value, default=default, option=_OPTIONS)
    except orjson.JSONEncodeError:
        return loads(dumps(value, default=default))
    if b"\\u0000" in text:
        return orjson.loads(_storable(text.decode()))
    return orjson.loads(text)


# Depth from the text alone: "{" and "}" become "[" and "]", everything else goes.
_BRACKETS = bytes.maketrans(b"{}", b"[]")
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_OPEN_AS_TWO = bytes.maketrans(b"[]", b"\x02\x00")
_STRIP_PASSES = 8


def deeper_than(text: bytes, depth: int) -> bool:
    """Whether JSON ``text`` nests arrays and objects more than ``depth`` levels, read from its
    bytes in C loops only (no decoding, no regular expression that could backtrack, no Python
    loop per byte). Meant for valid JSON; for other text the answer is a guess.

    Escaped backslashes and quotes are dropped, so every quote left delimits a string; what
    lies between strings is kept, then only its brackets. A few passes strip the innermost
    pairs, one level each, which empties the shallow structure of most texts at once. What is
    left is measured in one pass: with ``[`` counted as 2 and ``]`` as 0, the depth after
    ``i`` brackets is the running sum minus ``i``.
    """
    if text.count(b"[") + text.count(b"{") <= depth:
        return False
    unescaped = text.replace(b"\\\\", b"").replace(b'\\"', b"")
    structure = b"".join(unescaped.split(b'"')[::2]).translate(_BRACKETS, _NOT_BRACKETS)
    limit = depth
    for _ in range(min(_STRIP_PASSES, depth)):
        if not structure:
            return False
        structure, limit = structure.replace(b"[]", b""), limit - 1
    if not structure:
        return False
    deepest: int = max(map(operator.sub, accumulate(structure.translate(_OPEN_AS_TWO)), count(1)))
    return deepest > limit
