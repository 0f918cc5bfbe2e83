"""What every connection to a SQLite database shares, whichever driver opened it.

Two drivers open the same file: aiosqlite under SQLAlchemy (``database.py``) and plain
``sqlite3`` on the hot path (``direct/``). Both set it up with ``pragmas`` and write times as
``time_text`` (``UTCDateTime`` uses it on SQLite), so each reads the other's rows and behaves
the same on them.
"""

from __future__ import annotations

from datetime import UTC, datetime

BUSY_TIMEOUT_MS = 10_000
WAL_SIZE_LIMIT = 32 * 1024 * 1024


def pragmas(busy_timeout_ms: int = BUSY_TIMEOUT_MS) -> tuple[str, ...]:
    """The statements that set up a new connection, waiting ``busy_timeout_ms`` on a lock."""
    return (
        f"PRAGMA busy_timeout = {busy_timeout_ms}",
        "PRAGMA journal_mode = WAL",
        # A rewound log is cut back to this size; without it the file keeps its largest size.
        f"PRAGMA journal_size_limit = {WAL_SIZE_LIMIT}",
        # A commit survives the process crashing, not a power loss (see docs/storage.md).
        "PRAGMA synchronous = NORMAL",
        "PRAGMA foreign_keys = ON",
        # LIKE is case-sensitive on PostgreSQL; make prefix filters agree.
        "PRAGMA case_sensitive_like = ON",
    )


def time_text(value: datetime) -> str:
    """A time as stored: naive UTC text with microseconds, whose order is the time order."""
    if value.tzinfo is None:
        raise ValueError("naive datetime given to the store; use aware UTC datetimes")
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def text_time(value: str) -> datetime:
    """The aware UTC time of a stored ``time_text``."""
    return datetime.fromisoformat(value).replace(tzinfo=UTC)


def optional_time_text(value: datetime | None) -> str | None:
    return None if value is None else time_text(value)


def optional_text_time(value: str | None) -> datetime | None:
    return None if value is None else text_time(value)
