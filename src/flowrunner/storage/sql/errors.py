"""Driver errors translated to the storage errors of ``flowrunner.errors``, in one place.

Every driver's errors come here: SQLAlchemy's wrappers (aiosqlite, asyncpg), plain
``sqlite3``'s and plain asyncpg's on the hot paths. They fall in the same few classes, so one
mapping serves all: a broken constraint is a ``Conflict``, a database that cannot be reached
or is locked out is ``StorageUnavailable``, anything else a ``StorageError``.
"""

from __future__ import annotations

import sqlite3
import sys

from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError

from flowrunner.errors import Conflict, StorageError, StorageUnavailable

_CONFLICT: tuple[type[BaseException], ...] = (IntegrityError, sqlite3.IntegrityError)
_UNAVAILABLE: tuple[type[BaseException], ...] = (
    OSError,
    OperationalError,
    InterfaceError,
    sqlite3.OperationalError,
    TimeoutError,
)


def _classes() -> tuple[tuple[type[BaseException], ...], tuple[type[BaseException], ...]]:
    """The conflict and unavailable classes, plain asyncpg's among them once it is loaded: a
    SQLite server never imports asyncpg (~25 ms and ~3 MB), and no asyncpg error can exist
    before it is."""
    asyncpg = sys.modules.get("asyncpg")
    if asyncpg is None:
        return _CONFLICT, _UNAVAILABLE
    # No connection (class 08), the server refusing or shutting down (53, 57), the client's
    # connection closed under it.
    return (*_CONFLICT, asyncpg.IntegrityConstraintViolationError), (
        *_UNAVAILABLE,
        asyncpg.PostgresConnectionError,
        asyncpg.InsufficientResourcesError,
        asyncpg.OperatorInterventionError,
        asyncpg.InterfaceError,
    )


def translate(exc: BaseException) -> StorageError:
    """The domain error for a driver error; callers ``raise translate(e) from e``."""
    conflict, unavailable = _classes()
    if isinstance(exc, conflict):
        return Conflict(f"conflicts with existing data: {_first_line(exc)}")
    if isinstance(exc, unavailable):
        return StorageUnavailable(f"database unavailable: {_first_line(exc)}")
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return StorageUnavailable(f"database connection lost: {_first_line(exc)}")
    return StorageError(f"database error: {_first_line(exc)}")


def _first_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    return str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
