"""The read-modify-write rules of the key-value store's atomic updates, shared by every backend.

Each backend makes ``increment`` and ``append`` atomic its own way (a lock, a row lock, a
conditional write); what the new value is, and which old values are refused, is decided here
so the four backends cannot disagree.
"""

from __future__ import annotations

from flowrunner.errors import Conflict
from flowrunner.storage.records import JSONValue

Number = int | float

# A list grown by ``append`` stops at this many items: a flow appending in a loop must not
# grow one entry without bound (every later read returns all of it).
MAX_APPEND_ITEMS = 10_000


def is_number(value: object) -> bool:
    # JSON true/false are not numbers, although Python's bool is an int.
    return isinstance(value, int | float) and not isinstance(value, bool)


def incremented(key: str, old: JSONValue, amount: Number, *, exists: bool) -> Number:
    """``old + amount``; a missing (or expired) entry counts as 0."""
    if not is_number(amount):
        raise Conflict(f"cannot increment '{key}' by {amount!r}: not a number", key=key)
    if not exists:
        return amount
    if isinstance(old, bool) or not isinstance(old, int | float):
        raise Conflict(
            f"cannot increment '{key}': its value is a {_kind(old)}, not a number", key=key
        )
    return old + amount


def appended(key: str, old: JSONValue, value: JSONValue, *, exists: bool) -> list[JSONValue]:
    """``old`` with ``value`` at the end; a missing (or expired) entry is an empty list."""
    if not exists:
        return [value]
    if not isinstance(old, list):
        raise Conflict(
            f"cannot append to '{key}': its value is a {_kind(old)}, not a list", key=key
        )
    if len(old) >= MAX_APPEND_ITEMS:
        raise Conflict(
            f"cannot append to '{key}': the list already has {len(old)} items "
            f"(at most {MAX_APPEND_ITEMS})",
            key=key,
        )
    return [*old, value]


def _kind(value: JSONValue) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dict):
        return "object"
    return "list" if isinstance(value, list) else "number"
