"""``EndListener``: runs that ended, in any process, through PostgreSQL's LISTEN/NOTIFY.

The statement that appends events to a run whose status is final (its last events and final
event, which the runner writes with that status in one statement) also calls
``pg_notify(ENDED_CHANNEL, id)`` (``executions.PgExecutions._set`` and ``_record``): a
waiter woken by it reads the run whole, as one woken by the bus's final event does.
PostgreSQL delivers it when that statement commits, to every connection listening, whichever
process it belongs to. Each store keeps one such
connection, opened when the first waiter comes; a waiter (``watch``) gets an event set when
its run's notice arrives. The payload is the execution id only: the waiter reads the run
through its own account's scope.

A notice is best effort: a lost listening connection sets every waiter's event (they read the
run again) and the next waiter opens a new one; a waiter whose listener cannot connect is
left to its periodic re-read.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg

log = logging.getLogger(__name__)

ENDED_CHANNEL = "flowrunner_execution_ended"


class EndListener:
    def __init__(self, dsn: str) -> None:
        self._dsn = dsn
        self._conn: asyncpg.Connection | None = None
        self._opening = asyncio.Lock()
        self._waiters: dict[str, set[asyncio.Event]] = {}

    @asynccontextmanager
    async def watch(self, execution_id: str) -> AsyncIterator[asyncio.Event]:
        ended = asyncio.Event()
        self._waiters.setdefault(execution_id, set()).add(ended)
        try:
            await self._listening()  # LISTEN is in effect before the caller reads the run
            yield ended
        finally:
            waiting = self._waiters.get(execution_id)
            if waiting is not None:
                waiting.discard(ended)
                if not waiting:
                    del self._waiters[execution_id]

    async def close(self) -> None:
        async with self._opening:
            conn, self._conn = self._conn, None
            if conn is not None and not conn.is_closed():
                await conn.close()

    async def _listening(self) -> None:
        if self._conn is not None and not self._conn.is_closed():
            return
        async with self._opening:
            if self._conn is not None and not self._conn.is_closed():
                return
            try:
                conn = await asyncpg.connect(self._dsn)
                await conn.add_listener(ENDED_CHANNEL, self._notified)
            except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError):
                log.warning("storage: cannot listen for ended runs", exc_info=True)
                return
            conn.add_termination_listener(self._lost)
            self._conn = conn

    def _notified(self, _conn: object, _pid: int, _channel: str, payload: object) -> None:
        for ended in self._waiters.get(str(payload), ()):
            ended.set()

    def _lost(self, conn: object) -> None:
        if conn is self._conn:
            self._conn = None
        # Notices may have been missed while it was going: every waiter reads again.
        for waiting in self._waiters.values():
            for ended in waiting:
                ended.set()
