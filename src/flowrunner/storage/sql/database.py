"""One SQLAlchemy async engine per store, transactions with retry, and driver-error translation.

The same code serves SQLite and PostgreSQL; what differs is decided here once:

- SQLite allows one writer at a time. Writes in this process queue on an asyncio lock (so they
  never spin on "database is locked"), start with ``BEGIN IMMEDIATE`` (so a writer in another
  process waits on ``busy_timeout`` instead of failing at commit), and WAL lets reads run
  alongside. pysqlite's own implicit transactions are switched off so we control BEGIN.
- On a SQLite file, the calls every run makes bypass the async layer (``direct/``: one thread
  hop per transaction instead of one per cursor operation), unless the store is opened with
  ``direct=False``; ``first`` and ``all`` (one-statement reads) take that path too.
  Connections of both drivers are set up alike (``sqlite.py``).
- On PostgreSQL, the calls every run makes are single prepared statements on a plain asyncpg
  pool (``direct/postgres/``: one round trip a call), unless ``direct=False``.
- PostgreSQL gets a pool (pre-ping only on request). A transaction is retried with backoff
  when it could not connect, lost its connection before committing (the server rolled it
  back), or was aborted for serialization or deadlock. A failure during COMMIT is never
  retried: whether the commit happened is unknown, and work must not be applied twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import Executable, Row, Table, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.sql.dml import Insert

from flowrunner import jsontext
from flowrunner.errors import StorageError
from flowrunner.storage.sql.direct.connection import DirectSqlite
from flowrunner.storage.sql.errors import translate
from flowrunner.storage.sql.sqlite import pragmas

if TYPE_CHECKING:
    from flowrunner.storage.sql.direct.postgres.connection import DirectPostgres

T = TypeVar("T")
log = logging.getLogger(__name__)

RETRY_DELAYS = (0.05, 0.2, 0.5, 1.0)
# serialization_failure, deadlock_detected: PostgreSQL rolled the transaction back, a retry is safe.
RETRYABLE_SQLSTATES = frozenset({"40001", "40P01"})


def normalize_url(url: str | URL) -> URL:
    """The async-driver form of a SQLite or PostgreSQL URL (``postgresql://`` → asyncpg)."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend in ("postgresql", "postgres"):
        return parsed.set(drivername="postgresql+asyncpg")
    if backend == "sqlite":
        return parsed.set(drivername="sqlite+aiosqlite")
    raise StorageError(f"unsupported database URL scheme {parsed.drivername!r}")


class Database:
    def __init__(
        self,
        url: str | URL,
        *,
        pool_size: int = 10,
        pool_pre_ping: bool = False,
        direct: bool = True,
    ) -> None:
        self.url = normalize_url(url)
        self.dialect = self.url.get_backend_name()
        self.is_sqlite = self.dialect == "sqlite"
        self._write_lock = asyncio.Lock() if self.is_sqlite else None
        self.engine: AsyncEngine = self._create_engine(pool_size, pool_pre_ping)
        # Same pool, but every transaction it begins is BEGIN IMMEDIATE on SQLite.
        self._write_engine = self.engine.execution_options(sqlite_begin="IMMEDIATE")
        # SQLite's hot path bypasses the async layer (see direct/); the store picks its
        # implementations by whether this is set. An in-memory database lives in SQLAlchemy's
        # one connection, which a second driver cannot open: it has none.
        self.direct: DirectSqlite | None = None
        if direct and self.is_sqlite and self.url.database not in (None, "", ":memory:"):
            self.direct = DirectSqlite(self.url.database, lock=self._write_lock)
        # PostgreSQL's hot path: its own asyncpg pool beside SQLAlchemy's (which would add a
        # reset-on-return ROLLBACK round trip and its statement compilation to every call).
        self.direct_pg: DirectPostgres | None = None
        if direct and not self.is_sqlite:
            # Imported here: plain asyncpg (~25 ms and ~3 MB) only for a PostgreSQL store.
            from flowrunner.storage.sql.direct.postgres.connection import DirectPostgres

            dsn = self.url.set(drivername="postgresql").render_as_string(hide_password=False)
            self.direct_pg = DirectPostgres(dsn, max_size=pool_size)

    def _create_engine(self, pool_size: int, pool_pre_ping: bool) -> AsyncEngine:
        if not self.is_sqlite:
            return create_async_engine(
                self.url,
                pool_size=pool_size,
                max_overflow=pool_size,
                pool_pre_ping=pool_pre_ping,
                pool_recycle=1800,
                json_serializer=jsontext.dumps,
                json_deserializer=jsontext.loads,
            )
        engine = create_async_engine(
            self.url,
            connect_args={"timeout": 30},
            json_serializer=jsontext.dumps,
            json_deserializer=jsontext.loads,
        )

        @event.listens_for(engine.sync_engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # we emit BEGIN ourselves (see _on_begin)
            cursor = dbapi_conn.cursor()
            for pragma in pragmas():
                cursor.execute(pragma)
            cursor.close()

        @event.listens_for(engine.sync_engine, "begin")
        def _on_begin(conn: Any) -> None:
            mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
            conn.exec_driver_sql(f"BEGIN {mode}")

        return engine

    async def close(self) -> None:
        if self.direct is not None:
            await self.direct.close()
        if self.direct_pg is not None:
            await self.direct_pg.close()
        await self.engine.dispose()

    async def read(self, work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        """Run ``work`` in a read transaction (a consistent snapshot), with retries."""
        return await self._run(work, write=False)

    async def write(self, work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        """Run ``work`` in a write transaction committed at the end, with retries."""
        return await self._run(work, write=True)

    async def _run(self, work: Callable[[AsyncConnection], Awaitable[T]], *, write: bool) -> T:
        engine = self._write_engine if write else self.engine
        lock = self._write_lock if write and self._write_lock else contextlib.nullcontext()
        for attempt, delay in enumerate((*RETRY_DELAYS, None)):
            stage = Stage.CONNECT
            try:
                async with lock, engine.connect() as conn:
                    async with conn.begin():
                        stage = Stage.WORK
                        result = await work(conn)
                        stage = Stage.COMMIT  # leaving the block commits
                    return result
            except (DBAPIError, OSError) as exc:
                if delay is None or not _retryable(exc, stage):
                    raise translate(exc) from exc
                log.warning("storage: transient error, retry %d: %s", attempt + 1, exc)
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")  # the loop always returns or raises

    async def first(self, stmt: Executable) -> Row[Any] | None:
        """The first row of a one-statement read; on SQLite through the one-hop path."""
        if self.direct is not None:
            return await self.direct.first(stmt)

        async def work(conn: AsyncConnection) -> Row[Any] | None:
            return (await conn.execute(stmt)).first()

        return await self.read(work)

    async def all(self, stmt: Executable) -> Sequence[Row[Any]]:
        """Every row of a one-statement read; on SQLite through the one-hop path."""
        if self.direct is not None:
            return await self.direct.all(stmt)

        async def work(conn: AsyncConnection) -> Sequence[Row[Any]]:
            return (await conn.execute(stmt)).all()

        return await self.read(work)

    def insert(self, table: Table) -> Any:
        """The dialect's INSERT, which knows ``on_conflict_do_*`` (same API on both)."""
        # Imported here: a SQLite store has no use for the PostgreSQL dialect (~20 ms and
        # ~1 MB of code at every start); an engine loads the dialect it runs on itself.
        if self.is_sqlite:
            from sqlalchemy.dialects import sqlite

            stmt: Insert = sqlite.insert(table)
        else:
            from sqlalchemy.dialects import postgresql

            stmt = postgresql.insert(table)
        return stmt


def _sqlstate(exc: BaseException) -> str | None:
    orig = getattr(exc, "orig", None)
    return getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)


class Stage(enum.Enum):
    CONNECT = "connect"
    WORK = "work"
    COMMIT = "commit"


def _retryable(exc: BaseException, stage: Stage) -> bool:
    """Whether running the whole transaction again is safe and may succeed."""
    if _sqlstate(exc) in RETRYABLE_SQLSTATES:
        return True  # the server rolled back; nothing of this attempt persists
    if stage is Stage.COMMIT:
        return False  # the commit may or may not have happened: never apply work twice
    if stage is Stage.CONNECT:
        return isinstance(exc, OSError | OperationalError | InterfaceError)
    # Mid-transaction, only a lost connection is transient: the server rolls back an
    # uncommitted transaction whose connection dropped. (A SQLite "database is locked" here
    # already waited out busy_timeout; waiting again would only stall the caller.)
    return isinstance(exc, OSError) or (isinstance(exc, DBAPIError) and exc.connection_invalidated)


def columns_of(record: Any) -> dict[str, Any]:
    """Column values of a record whose fields are named like its table's columns."""
    return {name: getattr(record, name) for name in record.__slots__}
