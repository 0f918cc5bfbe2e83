"""JSON text on the hot paths: orjson where it can, the standard library where it cannot.

Every run writes its events and checkpoints as JSON text and detaches its payloads with a JSON
round trip; with the standard library's encoder that was about a sixth of a run's CPU. orjson
does the same 5-10x faster. The standard library stays as the fallback for what orjson refuses
(integers past 64 bits, text holding ``NaN``), so no value that was accepted before is refused
now.

Lone surrogates (``"\\ud800"``, which JavaScript strings and JSON ``\\u`` escapes can hold) are
not UTF-8: orjson refuses them, and a database driver would fail to send them. Such a value
goes through the fallback, which writes them as ``\\u`` escapes (ASCII-only text), and reads
back unchanged: no value is altered or refused on its way to the store and back. What a run
hands on (outputs, events, state) is made well-formed first (``copy(well_formed=True)``,
``replace_lone_surrogates``), and a run input holding one is refused: see
docs/executions.md.

Differences from ``json.dumps`` worth knowing: the text is compact UTF-8 (no spaces, no
``\\u`` escapes), ``NaN``/``Infinity`` become ``null`` (valid JSON, as PostgreSQL and browsers
require), and datetimes, dataclasses and UUIDs are encoded natively (ISO 8601, objects, text)
instead of going through ``default``.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Callable
from itertools import accumulate, count
from typing import Any

import orjson

_OPTIONS = orjson.OPT_NON_STR_KEYS


def dumps(value: Any, *, default: Callable[[Any], Any] | None = None) -> str:
    """``value`` as JSON text; ``TypeError``/``ValueError`` if it is not JSON."""
    try:
        return orjson.dumps(value, default=default, option=_OPTIONS).decode()
    except orjson.JSONEncodeError:
        # Raises the standard library's own TypeError/ValueError when the value really is
        # not JSON; encodes it when orjson merely declines (a big integer, a lone surrogate).
        # ASCII-only text: a lone surrogate is written as its \u escape, which is valid
        # UTF-8 every database and driver accepts, and ``loads`` gives it back unchanged.
        return json.dumps(value, default=default, ensure_ascii=True, separators=(",", ":"))


def loads(text: str | bytes) -> Any:
    """The value of JSON ``text``; ``ValueError`` if it is not JSON."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)  # NaN/Infinity tokens older rows may hold


def copy(
    value: Any, *, default: Callable[[Any], Any] | None = None, well_formed: bool = False
) -> Any:
    """A detached, JSON-safe copy of ``value`` (a round trip through JSON text); with
    ``well_formed``, lone surrogates in its strings are replaced by U+FFFD (see
    ``replace_lone_surrogates``)."""
    try:
        return orjson.loads(orjson.dumps(value, default=default, option=_OPTIONS))
    except orjson.JSONEncodeError:
        copied = loads(dumps(value, default=default))
        return replace_lone_surrogates(copied) if well_formed else copied


def replace_lone_surrogates(value: Any) -> Any:
    """``value`` (a JSON value) with every lone surrogate in its strings and keys replaced by
    U+FFFD, the Unicode replacement character. Text that is not valid Unicode cannot be
    encoded as UTF-8: HTTP responses, WebSocket frames, webhooks and the sandbox would fail
    on it, so what a run hands on is always well-formed."""
    if isinstance(value, str):
        return _well_formed(value)
    if isinstance(value, list):
        return [replace_lone_surrogates(v) for v in value]
    if isinstance(value, dict):
        return {_well_formed(k): replace_lone_surrogates(v) for k, v in value.items()}
    return value


def has_lone_surrogate(value: Any) -> bool:
    """Whether any string (or key) of the JSON value ``value`` holds a lone surrogate."""
    return bool(replace_lone_surrogates(value) != value)


def _well_formed(text: str) -> str:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        # UTF-16 pairs the surrogates that do form a pair; the lone ones become U+FFFD.
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text


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
