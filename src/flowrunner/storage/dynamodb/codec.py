"""Python values <-> DynamoDB attribute values, and the key formats every item uses.

Only a few attribute types are used on purpose: strings (``S``), numbers (``N``, ints and the
execution progress float), booleans, binary (secret ciphertext) and lists of strings (tags,
event types). JSON documents (inputs, outputs, payloads, state) are stored as one JSON string:
DynamoDB maps would turn every float into a ``Decimal`` and lose the difference between ``1``
and ``1.0``, while a string round-trips exactly as the other backends do.

Timestamps are fixed-width ISO-8601 UTC strings (always with microseconds and ``Z``), so string
order is time order: sort keys and conditions such as ``lease_expires_at <= :now`` compare them
directly on the server.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from flowrunner.storage.records import JSONValue

AttributeValue = dict[str, Any]
Item = dict[str, AttributeValue]
"""A raw DynamoDB item as the low-level client sends and returns it."""

SEP = "\x00"
"""Separator inside composite sort keys: it sorts below every other character, so
``(a, b)`` tuples and ``a + SEP + b`` strings order the same way (a prefix sorts first)."""


def ts(when: datetime) -> str:
    """A sortable timestamp; naive datetimes are taken as UTC."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_ts(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def time_key(when: datetime, ident: str) -> str:
    """The sort key of a newest-first listing: ``(created_at, id)`` as one string."""
    return f"{ts(when)}{SEP}{ident}"


def seq_key(prefix: str, seq: int) -> str:
    """A zero-padded sequence number, so string order is numeric order."""
    return f"{prefix}{seq:012d}"


def dump_json(value: JSONValue) -> str:
    # allow_nan=False: NaN is not JSON and the SQL backends reject it too.
    return json.dumps(value, separators=(",", ":"), allow_nan=False)


def load_json(text: str) -> Any:
    return json.loads(text)


def encode(value: Any) -> AttributeValue:
    """One Python value as an attribute value (``None`` is the NULL type)."""
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int | float):
        return {"N": repr(value)}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, bytes | bytearray | memoryview):
        return {"B": bytes(value)}
    if isinstance(value, list | tuple):
        return {"L": [encode(v) for v in value]}
    raise TypeError(f"cannot store {type(value).__name__} in a DynamoDB attribute")


def decode(attr: AttributeValue) -> Any:
    ((kind, raw),) = attr.items()
    if kind == "S":
        return raw
    if kind == "N":
        text = str(raw)
        return int(text) if text.lstrip("-").isdigit() else float(text)
    if kind == "BOOL":
        return bool(raw)
    if kind == "B":
        return bytes(raw)
    if kind == "L":
        return [decode(v) for v in raw]
    if kind == "NULL":
        return None
    raise TypeError(f"unexpected DynamoDB attribute type {kind}")


def to_item(fields: Mapping[str, Any]) -> Item:
    """An item from plain values; ``None`` fields are left out (absent = not set)."""
    return {k: encode(v) for k, v in fields.items() if v is not None}


def from_item(item: Item) -> dict[str, Any]:
    return {k: decode(v) for k, v in item.items()}


def opt_ts(value: Any) -> datetime | None:
    return None if value is None else parse_ts(str(value))
