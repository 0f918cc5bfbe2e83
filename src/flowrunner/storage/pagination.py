"""Opaque cursors for keyset pagination, shared by every backend.

A cursor is the sort key of the last item of a page (e.g. ``[created_at, id]``), JSON-encoded
and base64url'd. Keyset (not offset) pagination keeps page N as cheap as page 1 and stable
while rows are inserted; the encoding is opaque so backends may change it.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime

from flowrunner.errors import StorageError
from flowrunner.storage.protocols import MAX_LIMIT

CursorKey = list[str | int]


class InvalidCursor(StorageError):
    """A cursor that this store did not produce (or produced for another listing)."""

    code = "invalid_cursor"


def encode_cursor(*key: str | int | datetime) -> str:
    parts: CursorKey = [k.isoformat() if isinstance(k, datetime) else k for k in key]
    raw = json.dumps(parts, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, arity: int) -> CursorKey:
    """The key inside ``cursor``; ``InvalidCursor`` if it is not ours or has the wrong shape."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        parts = json.loads(raw)
    except (binascii.Error, ValueError) as exc:
        raise InvalidCursor("invalid pagination cursor", cursor=cursor) from exc
    if (
        not isinstance(parts, list)
        or len(parts) != arity
        or not all(isinstance(p, str | int) for p in parts)
    ):
        raise InvalidCursor("invalid pagination cursor", cursor=cursor)
    return parts


def decode_time_cursor(cursor: str) -> tuple[datetime, str]:
    """``(created_at, id)`` from a cursor made by ``encode_cursor(created_at, id)``."""
    when, ident = decode_cursor(cursor, 2)
    if not isinstance(when, str) or not isinstance(ident, str):
        raise InvalidCursor("invalid pagination cursor", cursor=cursor)
    try:
        return datetime.fromisoformat(when), ident
    except ValueError as exc:
        raise InvalidCursor("invalid pagination cursor", cursor=cursor) from exc


def clamp_limit(limit: int) -> int:
    """Limits outside 1..MAX_LIMIT are clamped rather than rejected: a listing never fails
    because a client asked for too much."""
    return max(1, min(limit, MAX_LIMIT))
