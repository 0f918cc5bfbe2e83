"""``DirectSqlite``: whole transactions on a plain ``sqlite3`` connection, one thread hop each,
with group commit (why: see the package's docstring).

A single writer's transactions run inline on the event loop's own connection, at once: unless
another writer holds the lock, a write takes 20-60 µs where a thread hop costs ~130 µs. That
connection is opened with no busy wait (``timeout=0``) and no automatic checkpoint, so it can
never block the loop on a lock; if the database is locked (another process, the thread's
group, a checkpoint) the write goes to the thread, which waits for it.

Concurrent writers share commits (group commit on the loop). Once two writes arrive in the same
turn of the event loop, writes are committed in rounds: each write of a turn joins that turn's
round, and the round is committed at the start of the next turn in one inline ``BEGIN
IMMEDIATE … COMMIT``, each write in its own savepoint (one write's error never undoes
another's). Every caller's ``write`` returns only after the commit that holds its write, so a
run's checkpoint is durable before its next node starts, as before; what is shared is the
transaction's fixed cost (BEGIN, COMMIT, the pages of the tables and indexes every run's write
touches: the executions row's page, the event and checkpoint tables' last pages), which was a
third of a run's storage CPU. Runs woken by the same commit reach their next write in the same
turn, so rounds stay full under load; a round of one write switches back to committing at once.
The cost is one turn of the loop of latency per write while rounds are on. Writes queued for
the thread are group-committed the same way: those that arrive while it commits go out
together in its next transaction.

Checkpoints of the write-ahead log (which fsync) run on the thread every ``CHECKPOINT_EVERY``
writes committed (writes, not commits: a shared commit logs more pages). A checkpoint racing
steady writes never catches up with the log, so the log was never rewound: it grew by
~270 KB a run (350 MB in a minute of load) and every commit got slower as its index grew. So
a passive pass copies most of the log while writers go on, then a RESTART pass under the
writer lock (this process's writers queue; the loop itself never waits) copies the tail,
waits out the readers still in the log, and the next commit writes the log from its start
again.

Writes also hold the ``Database``'s writer lock, so they queue with SQLAlchemy's writers of
this process instead of spinning on SQLite's file lock; writers in other processes wait on
``busy_timeout`` as before. Connections are set up as SQLAlchemy's are (``sqlite.pragmas``),
so durability is the SQLAlchemy path's: WAL with ``synchronous=NORMAL`` (a committed
transaction survives the process crashing; see docs/storage.md for power loss).
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractAsyncContextManager, nullcontext
from typing import Any, Generic, TypeVar, cast

from sqlalchemy import Connection, Executable, Row, StaticPool, create_engine

from flowrunner import jsontext
from flowrunner.storage.sql.errors import translate
from flowrunner.storage.sql.sqlite import BUSY_TIMEOUT_MS, pragmas

T = TypeVar("T")
Work = Callable[[sqlite3.Connection], T]

CHECKPOINT_EVERY = 500


class _Pending(Generic[T]):
    __slots__ = ("error", "future", "result", "work")

    def __init__(self, work: Work[T], future: asyncio.Future[T]) -> None:
        self.work, self.future = work, future
        self.result: Any = None
        self.error: BaseException | None = None


class DirectSqlite:
    """One ``sqlite3`` connection on its own thread; ``read`` and group-committed ``write``."""

    def __init__(
        self,
        path: str,
        *,
        busy_timeout_ms: int = BUSY_TIMEOUT_MS,
        lock: asyncio.Lock | None = None,
    ) -> None:
        self._path = path
        self._busy_timeout_ms = busy_timeout_ms
        self._writer_lock = lock
        self._lock: AbstractAsyncContextManager[Any] = lock or nullcontext()
        self._inline: sqlite3.Connection | None = None
        self._checkpointing: asyncio.Task[None] | None = None
        self._thread: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None
        self._sa: Connection | None = None
        self._queue: list[_Pending[Any]] = []
        self._round: list[_Pending[Any]] = []  # writes of this loop turn, committed at its end
        self._rounds = False  # concurrent writers seen: writes are committed in rounds
        self._turn_writes = 0  # immediate writes in this turn of the loop
        self._committer: asyncio.Task[None] | None = None
        self.commits = 0
        self._unchecked = 0  # writes committed since the last checkpoint began
        """Write transactions committed so far (each holds one or more writes)."""

    async def read(self, work: Work[T]) -> T:
        """``work`` in a read transaction (a consistent snapshot)."""
        done, result = self._try_inline("BEGIN", work)
        if done:
            return cast(T, result)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor(), self._read, work)

    async def first(self, stmt: Executable) -> Row[Any] | None:
        """The first row of one SQLAlchemy statement, types processed as on the async path
        (it runs on a sync SQLAlchemy connection over this thread's ``sqlite3`` one)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor(), self._first, stmt)

    async def all(self, stmt: Executable) -> Sequence[Row[Any]]:
        """Every row of one SQLAlchemy statement (see ``first``)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor(), self._all, stmt)

    async def write(self, work: Work[T]) -> T:
        """``work`` in a write transaction, committed (possibly with others') before return."""
        loop = asyncio.get_running_loop()
        pending: _Pending[T] = _Pending(work, loop.create_future())
        if self._writer_lock and self._writer_lock.locked():
            self._to_thread([pending])  # another writer of this process: wait on the thread
        elif not self._rounds:
            # No other writer seen lately: commit at once, inline, no waiting at all. A second
            # write in the same turn of the loop means concurrent callers: batch from then on.
            if self._turn_writes == 0:
                loop.call_soon(self._turn_ended)
            self._turn_writes += 1
            if self._turn_writes > 1:
                self._rounds = True
            done, result = self._try_inline("BEGIN IMMEDIATE", work)
            if done:
                self._committed()
                return cast(T, result)
            self._to_thread([pending])
        else:
            # Joins the writes that arrive in this turn of the event loop; the first one
            # schedules their commit for the next turn (see _commit_round).
            if not self._round:
                loop.call_soon(self._commit_round)
            self._round.append(pending)
        # The commit owns the write: a canceled caller (its future canceled) stops waiting,
        # the write still completes or fails as a whole with its group.
        return await pending.future

    async def close(self) -> None:
        self._commit_round()  # the writes of this turn, if any: their callback may not run
        if self._committer is not None:
            await asyncio.wait([self._committer])
        if self._checkpointing is not None:
            await asyncio.wait([self._checkpointing])
        if self._inline is not None:
            self._inline.close()
            self._inline = None
        if self._thread is None:
            return
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._thread, self._close)
        self._thread.shutdown(wait=True)
        self._thread = None  # a later call opens a new one (stores can be reconnected)

    # --- inline, on the event loop's thread ------------------------------------------------

    def _try_inline(self, begin: str, work: Work[T]) -> tuple[bool, Any]:
        """``(True, result)`` after running ``work`` in a transaction on the loop's connection;
        ``(False, None)`` when the database is locked (nothing was done: use the thread)."""
        try:
            conn = self._inline_connection()
            conn.execute(begin)
        except sqlite3.OperationalError:
            return False, None  # locked: the thread waits for it instead of the loop
        try:
            result = work(conn)
            conn.execute("COMMIT")
        except BaseException as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if _is_busy(exc):
                return False, None  # rolled back: the thread runs it again, waiting its turn
            if isinstance(exc, sqlite3.Error):
                raise translate(exc) from exc
            raise
        return True, result

    def _commit_round(self) -> None:
        """Commit the writes that arrived in the last turn of the loop in one inline
        transaction, each in its own savepoint; the whole round goes to the thread if the
        database is locked (nothing of it was done)."""
        group, self._round = self._round, []
        if not group:
            return
        if len(group) == 1:
            self._rounds = False  # alone again: the next write commits at once
        if self._writer_lock and self._writer_lock.locked():
            self._to_thread(group)
            return
        try:
            conn = self._inline_connection()
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError:
            self._to_thread(group)  # locked: the thread waits for it instead of the loop
            return
        try:
            if len(group) == 1:  # no other write to protect: no savepoint
                only = group[0]
                try:
                    only.result = only.work(conn)
                except Exception as exc:
                    if _is_busy(exc):
                        raise
                    only.error = _own_error(exc)
            else:
                for p in group:
                    conn.execute("SAVEPOINT step")
                    try:
                        p.result = p.work(conn)
                    except Exception as exc:
                        if _is_busy(exc):
                            raise
                        conn.execute("ROLLBACK TO step")
                        p.error = _own_error(exc)
                    conn.execute("RELEASE step")
            if len(group) == 1 and group[0].error is not None:
                conn.execute("ROLLBACK")  # its only write failed: nothing to commit
            else:
                conn.execute("COMMIT")
        except BaseException as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if _is_busy(exc):
                for p in group:
                    p.result, p.error = None, None
                self._to_thread(group)  # rolled back: the thread runs them again
                return
            error = translate(exc) if isinstance(exc, sqlite3.Error) else exc
            for p in group:
                p.error = error
        else:
            self._committed(len(group))
        _settle(group)

    def _turn_ended(self) -> None:
        self._turn_writes = 0

    def _to_thread(self, group: list[_Pending[Any]]) -> None:
        self._queue.extend(group)
        if self._committer is None:
            self._committer = asyncio.get_running_loop().create_task(self._commit_queued())

    def _inline_connection(self) -> sqlite3.Connection:
        if self._inline is None:
            conn = sqlite3.connect(
                self._path, timeout=0, isolation_level=None, check_same_thread=False
            )
            try:
                for pragma in (*pragmas(0), "PRAGMA wal_autocheckpoint = 0"):
                    conn.execute(pragma)
            except sqlite3.Error:
                conn.close()  # locked while setting up: try again on the next call
                raise
            self._inline = conn
        return self._inline

    def _committed(self, writes: int = 1) -> None:
        self.commits += 1
        # Counted in writes, not commits: a shared commit logs more pages than a single one,
        # and the log between two checkpoints must stay as small as it was.
        self._unchecked += writes
        if self._unchecked >= CHECKPOINT_EVERY and (
            self._checkpointing is None or self._checkpointing.done()
        ):
            self._unchecked = 0
            self._checkpointing = asyncio.get_running_loop().create_task(self._checkpoint())

    async def _checkpoint(self) -> None:
        loop = asyncio.get_running_loop()
        # Most of the log is copied while writers go on; only the tail written meanwhile is
        # copied with them queued, which keeps the pause they see short.
        await loop.run_in_executor(self._executor(), self._run_checkpoint, "PASSIVE")
        async with self._lock:  # writers of this process queue instead of spinning on SQLite's
            await loop.run_in_executor(self._executor(), self._run_checkpoint, "RESTART")

    def _run_checkpoint(self, mode: str) -> None:
        # A busy checkpoint (a long reader) is simply retried after CHECKPOINT_EVERY writes.
        with contextlib.suppress(sqlite3.Error):
            self._connection().execute(f"PRAGMA wal_checkpoint({mode})")

    def _executor(self) -> ThreadPoolExecutor:
        if self._thread is None:
            self._thread = ThreadPoolExecutor(1, thread_name_prefix="flowrunner-sqlite")
        return self._thread

    # --- the commit loop -------------------------------------------------------------------

    async def _commit_queued(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._queue:
                group, self._queue = self._queue, []
                try:
                    async with self._lock:
                        await loop.run_in_executor(self._executor(), self._write_group, group)
                except BaseException as exc:  # the commit itself failed: none of them stands
                    error = translate(exc) if isinstance(exc, sqlite3.Error) else exc
                    for p in group:
                        p.error = error
                else:
                    self._committed(len(group))
                _settle(group)
        finally:
            self._committer = None

    # --- on the connection's thread --------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            conn = sqlite3.connect(
                self._path,
                timeout=self._busy_timeout_ms / 1000,
                isolation_level=None,  # we BEGIN ourselves
                check_same_thread=True,
            )
            for pragma in pragmas(self._busy_timeout_ms):
                conn.execute(pragma)
            self._conn = conn
        return self._conn

    def _core(self) -> Connection:
        if self._sa is None:
            # Its pool hands out our connection; SQLAlchemy never begins or commits on it
            # (``_read`` does), it only compiles, executes and processes result types.
            raw = self._connection()
            engine = create_engine(
                "sqlite://",
                creator=lambda: raw,
                poolclass=StaticPool,
                json_serializer=jsontext.dumps,
                json_deserializer=jsontext.loads,
            )
            self._sa = engine.connect()
        return self._sa

    def _first(self, stmt: Executable) -> Row[Any] | None:
        core = self._core()  # before BEGIN: its first connect resets the connection
        return self._read(lambda _: core.execute(stmt).first())

    def _all(self, stmt: Executable) -> Sequence[Row[Any]]:
        core = self._core()
        return self._read(lambda _: core.execute(stmt).all())

    def _read(self, work: Work[T]) -> T:
        conn = self._connection()
        try:
            conn.execute("BEGIN")
            try:
                return work(conn)
            finally:
                conn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise translate(exc) from exc

    def _write_group(self, group: list[_Pending[Any]]) -> None:
        conn = self._connection()
        conn.execute("BEGIN IMMEDIATE")
        try:
            for p in group:
                conn.execute("SAVEPOINT step")
                try:
                    p.result = p.work(conn)
                except Exception as exc:
                    conn.execute("ROLLBACK TO step")
                    p.error = _own_error(exc)
                conn.execute("RELEASE step")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def _close(self) -> None:
        if self._sa is not None:
            self._sa.invalidate()  # do not let the pool roll back or close our connection
            self._sa.close()
            self._sa = None
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def _is_busy(exc: BaseException) -> bool:
    return isinstance(exc, sqlite3.OperationalError) and (
        "locked" in str(exc) or "busy" in str(exc)
    )


def _own_error(exc: Exception) -> BaseException:
    """What the caller of a write that failed on its own sees (its savepoint rolled back)."""
    if not isinstance(exc, sqlite3.Error):
        return exc
    error = translate(exc)
    error.__cause__ = exc
    return error


def _settle(group: list[_Pending[Any]]) -> None:
    for p in group:
        if p.future.done():  # its caller was canceled: the write stood or fell all the same
            continue
        if p.error is not None:
            p.future.set_exception(p.error)
        else:
            p.future.set_result(p.result)
