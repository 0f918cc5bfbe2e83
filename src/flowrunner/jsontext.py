"""JSON text on the hot paths: orjson where it can, the standard library where it cannot.

Every run writes its events and checkpoints as JSON text and detaches its payloads with a JSON
round trip; with the standard library's encoder that was about a sixth of a run's CPU. orjson
does the same 5-10x faster. The standard library stays as the fallback for what orjson refuses
(integers past 64 bits, text holding ``NaN``), so no value that was accepted before is refused
now.

Lone surrogates (``"\\ud800"``, which JavaScript strings and JSON ``\\u`` escapes can hold) are
not UTF-8: orjson refuses them, and a database driver would fail to send them. Such a value
goes through the fallback, which writes them as ``\\u`` escapes (ASCII-only text), and reads
back unchanged: no value is altered or refused on its way to the store and back.

Differences from ``json.dumps`` worth knowing: the text is compact UTF-8 (no spaces, no
``\\u`` escapes), ``NaN``/``Infinity`` become ``null`` (valid JSON, as PostgreSQL and browsers
require), and datetimes, dataclasses and UUIDs are encoded natively (ISO 8601, objects, text)
instead of going through ``default``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
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


def copy(value: Any, *, default: Callable[[Any], Any] | None = None) -> Any:
    """A detached, JSON-safe copy of ``value`` (a round trip through JSON text)."""
    try:
        return orjson.loads(orjson.dumps(value, default=default, option=_OPTIONS))
    except orjson.JSONEncodeError:
        return loads(dumps(value, default=default))
