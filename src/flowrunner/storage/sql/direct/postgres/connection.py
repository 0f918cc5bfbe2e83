"""``DirectPostgres``: one prepared statement per call on a plain asyncpg pool (and the
listener of ended runs, ``notices``).

Each call is one statement in its own implicit transaction: one round trip (asyncpg keeps
every statement it has seen prepared on each connection, so the text is parsed and planned
once per connection). Connections are handed back without a reset query (asyncpg's pool
would run ``RESET ALL; UNLISTEN *; ...``, one more round trip per call): nothing here sets
session state, opens a transaction or listens on them.

Retries follow ``Database``'s rules: a call is re-run with backoff when it could not get a
connection, or when PostgreSQL aborted it for a serialization failure or a deadlock (it rolled
the statement back). A read is also re-run when its connection was lost. A write whose
connection was lost after it was sent is not: the statement is its own commit, and whether it
happened is unknown (``StorageUnavailable``). Connections the server closed while idle in the
pool (a restart, ``pg_terminate_backend``) are noticed and replaced at checkout.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import asyncpg

from flowrunner.storage.sql.direct.postgres.notices import EndListener
from flowrunner.storage.sql.errors import translate

log = logging.getLogger(__name__)

RETRY_DELAYS = (0.05, 0.2, 0.5, 1.0)
# serialization_failure, deadlock_detected: the server rolled the statement back. So did a
# backend terminated under it (admin_shutdown): a commit that had happened would have been
# answered before the termination notice on the same connection.
_ROLLED_BACK = (
    asyncpg.SerializationError,
    asyncpg.DeadlockDetectedError,
    asyncpg.AdminShutdownError,
    asyncpg.CannotConnectNowError,
)
# No connection, or it went away: the statement may not have reached the server.
_LOST = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.TooManyConnectionsError,
    asyncpg.InterfaceError,
)


class DirectPostgres:
    """Plain asyncpg connections, opened as needed up to ``max_size`` at once;
    ``fetchrow``/``fetchval``/``fetch``/``execute``.

    Not asyncpg's ``Pool``: its checkout and return cost ~35-80 µs of CPU a call here (a
    timeout context, a holder, a reset hook), a third of what the whole statement costs. A
    connection goes back to the idle list as it is unless its call was interrupted (then its
    state is unknown and it is closed); the most recently used is reused first, and one found
    closed (the server ended it while idle) is replaced."""

    def __init__(self, dsn: str, *, max_size: int = 10) -> None:
        self._dsn = dsn
        self._slots = asyncio.Semaphore(max_size)
        self._idle: list[asyncpg.Connection] = []
        self._open: set[asyncpg.Connection] = set()
        self.ended = EndListener(dsn)  # its own connection, opened by the first waiter

    async def close(self) -> None:
        await self.ended.close()
        opened, self._open, self._idle = self._open, set(), []
        for conn in opened:
            if not conn.is_closed():
                await conn.close()

    async def _acquire(self) -> asyncpg.Connection:
        await self._slots.acquire()
        try:
            while self._idle:
                conn = self._idle.pop()
                if not conn.is_closed():
                    return conn
                self._open.discard(conn)
            conn = await asyncpg.connect(self._dsn)
            self._open.add(conn)
            return conn
        except BaseException:
            self._slots.release()
            raise

    def _release(self, conn: asyncpg.Connection, *, usable: bool) -> None:
        if usable and not conn.is_closed() and not conn.is_in_transaction():
            self._idle.append(conn)
        else:
            self._open.discard(conn)
            conn.terminate()
        self._slots.release()

    async def fetchrow(self, sql: str, *args: Any, write: bool = True) -> asyncpg.Record | None:
        row: asyncpg.Record | None = await self._run("fetchrow", sql, args, write)
        return row

    async def fetchval(self, sql: str, *args: Any, write: bool = True) -> Any:
        return await self._run("fetchval", sql, args, write)

    async def fetch(self, sql: str, *args: Any, write: bool = False) -> list[asyncpg.Record]:
        rows: list[asyncpg.Record] = await self._run("fetch", sql, args, write)
        return rows

    async def execute(self, sql: str, *args: Any, write: bool = True) -> str:
        status: str = await self._run("execute", sql, args, write)
        return status

    async def _run(self, method: str, sql: str, args: tuple[Any, ...], write: bool) -> Any:
        for attempt, delay in enumerate((*RETRY_DELAYS, None)):
            sent = False
            try:
                conn = await self._acquire()
                sent = True
                usable = False
                try:
                    result = await getattr(conn, method)(sql, *args)
                    usable = True
                    return result
                except asyncpg.PostgresError:
                    usable = True  # the server refused the statement; the connection is fine
                    raise
                finally:
                    self._release(conn, usable=usable)
            except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError) as exc:
                if delay is None or not _retryable(exc, sent=sent, write=write):
                    raise translate(exc) from exc
                log.warning("storage: transient error, retry %d: %s", attempt + 1, exc)
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")  # the loop always returns or raises


def _retryable(exc: BaseException, *, sent: bool, write: bool) -> bool:
    """Whether running the statement again is safe and may succeed."""
    if isinstance(exc, _ROLLED_BACK) or isinstance(exc.__cause__, _ROLLED_BACK):
        # (asyncpg reports a connection the server terminated as closed, the server's
        # notice as its cause: the connection was ended before the statement could commit.)
        return True
    if not isinstance(exc, _LOST):
        return False
    # Not sent: nothing happened. A read can always run again; a write that was sent may
    # have committed before its connection went.
    return not sent or not write
