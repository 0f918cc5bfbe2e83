"""``DirectSqlite``: whole transactions on a plain ``sqlite3`` connection, one thread hop each,
with group commit (why: see the package's docstring).

Writes are group-committed: when a write arrives while another commits, it waits and goes out
with every other write that arrived meanwhile, in one ``BEGIN IMMEDIATE … COMMIT`` (each in its
own savepoint, so one write's error never undoes another's). An idle store commits at once: no
added latency. Every caller's write is committed before its call returns.

Most transactions do not even hop: unless another writer holds the lock, a write runs inline
on the event loop's own connection, opened with no busy wait (``timeout=0``) and no automatic
checkpoint, so it can never block the loop on a lock; it takes 20-60 µs where a hop costs
~130 µs. If the database is locked (another process, the thread's group commit, a checkpoint)
it falls back to the thread.

Checkpoints of the write-ahead log (which fsync) run on the thread every ``CHECKPOINT_EVERY``
commits. A checkpoint racing steady writes never catches up with the log, so the log was never
rewound: it grew by ~270 KB a run (350 MB in a minute of load) and every commit got slower as
its index grew. So a passive pass copies most of the log while writers go on, then a RESTART
pass under the writer lock (this process's writers queue; the loop itself never waits) copies
the tail, waits out the readers still in the log, and the next commit writes the log from its
start again.

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
        self._committer: asyncio.Task[None] | None = None
        self.commits = 0
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
        # Inline transactions run to completion on the loop, so they never overlap each other;
        # only another writer (the thread's group, SQLAlchemy's, another process) sends a
        # write to the queue. Concurrent writes have no order between them to keep.
        if not (self._writer_lock and self._writer_lock.locked()):
            done, result = self._try_inline("BEGIN IMMEDIATE", work)
            if done:
                self._committed()
                return cast(T, result)
        loop = asyncio.get_running_loop()
        pending: _Pending[T] = _Pending(work, loop.create_future())
        self._queue.append(pending)
        if self._committer is None:
            self._committer = loop.create_task(self._commit_queued())
        # The commit task owns the write: a canceled caller (its future canceled) stops
        # waiting, the write still completes or fails as a whole with its group.
        return await pending.future

    async def close(self) -> None:
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

    def _committed(self) -> None:
        self.commits += 1
        if self.commits % CHECKPOINT_EVERY == 0 and (
            self._checkpointing is None or self._checkpointing.done()
        ):
            self._checkpointing = asyncio.get_running_loop().create_task(self._checkpoint())

    async def _checkpoint(self) -> None:
        loop = asyncio.get_running_loop()
        # Most of the log is copied while writers go on; only the tail written meanwhile is
        # copied with them queued, which keeps the pause they see short.
        await loop.run_in_executor(self._executor(), self._run_checkpoint, "PASSIVE")
        async with self._lock:  # writers of this process queue instead of spinning on SQLite's
            await loop.run_in_executor(self._executor(), self._run_checkpoint, "RESTART")

    def _run_checkpoint(self, mode: str) -> None:
        # A busy checkpoint (a long reader) is simply retried after CHECKPOINT_EVERY commits.
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
                    self._committed()
                for p in group:
                    if p.future.done():
                        continue
                    if p.error is not None:
                        p.future.set_exception(p.error)
                    else:
                        p.future.set_result(p.result)
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
                    p.error = translate(exc) if isinstance(exc, sqlite3.Error) else exc
                    p.error.__cause__ = exc if p.error is not exc else None
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
