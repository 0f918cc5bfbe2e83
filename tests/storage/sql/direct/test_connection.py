"""DirectSqlite: one-hop transactions and group commit on a real SQLite file."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from flowrunner.errors import Conflict, NotFound
from flowrunner.storage.sql.direct.connection import DirectSqlite
from tests.conftest import HANG_GUARD

HANG_GUARD_MS = round(HANG_GUARD * 1000)


@pytest.fixture
async def direct(tmp_path: Path) -> AsyncIterator[DirectSqlite]:
    path = tmp_path / "d.db"
    with sqlite3.connect(path) as setup:
        setup.execute("PRAGMA journal_mode = WAL")  # as every Flowrunner database
        setup.execute("CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER)")
    setup.close()
    # Tests hold SQLite's lock from a second connection for as long as they need: the
    # thread's busy wait must outlast a slow machine, so it is a hang guard.
    opened = DirectSqlite(str(path), busy_timeout_ms=HANG_GUARD_MS, lock=asyncio.Lock())
    yield opened
    await opened.close()


def _put(key: str, value: int) -> Callable[[sqlite3.Connection], int]:
    def work(conn: sqlite3.Connection) -> int:
        conn.execute("INSERT INTO t VALUES (?, ?)", (key, value))
        return value

    return work


async def _until(check: Callable[[], bool]) -> None:
    """Until ``check`` holds: the state of the store's own tasks, with no event to await."""
    async with asyncio.timeout(HANG_GUARD_MS / 1000):
        while not check():  # noqa: ASYNC110
            await asyncio.sleep(0.01)


def _rows(conn: sqlite3.Connection) -> list[tuple[str, int]]:
    return list(conn.execute("SELECT k, v FROM t ORDER BY k").fetchall())


async def test_writes_to_a_locked_database_wait_on_the_thread_and_share_commits(
    direct: DirectSqlite, tmp_path: Path
) -> None:
    blocker = sqlite3.connect(tmp_path / "d.db", isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # another process writing
    writes = asyncio.gather(*(direct.write(_put(f"k{i:02}", i)) for i in range(40)))
    # The loop is free while they wait for the lock: a write waiting on the loop would hold
    # it for the whole busy timeout, and this guard (half of it) would fire.
    async with asyncio.timeout(HANG_GUARD_MS / 2000):
        for _ in range(100):
            await asyncio.sleep(0)
    await _until(lambda: direct._committer is not None)  # they queued for the thread
    assert not writes.done()
    blocker.execute("COMMIT")
    blocker.close()
    assert await writes == list(range(40))
    assert await direct.read(_rows) == [(f"k{i:02}", i) for i in range(40)]
    assert 1 <= direct.commits <= 2  # queued while the first one waited: one group


async def test_concurrent_writes_share_commits_each_caller_after_its_own(
    direct: DirectSqlite,
) -> None:
    # The writes of one turn of the loop go out in one transaction (group commit on the
    # loop); each caller returns only once its write is committed.
    seen: list[int] = []

    async def put(i: int) -> int:
        value = await direct.write(_put(f"k{i:02}", i))
        with sqlite3.connect(direct._path) as other:  # committed, not just buffered
            seen.append(len(_rows(other)))
        other.close()
        return value

    results = await asyncio.gather(*(put(i) for i in range(40)))
    assert results == list(range(40))
    assert await direct.read(_rows) == [(f"k{i:02}", i) for i in range(40)]
    assert min(seen) >= 1
    assert direct.commits < 40  # shared: a few rounds, not one commit a write


async def test_a_single_writer_commits_each_write_at_once(direct: DirectSqlite) -> None:
    # One writer at a time (one client): no round to wait for, each write commits inline.
    for i in range(5):
        others_ran: list[bool] = []
        asyncio.get_running_loop().call_soon(others_ran.append, True)
        await direct.write(_put(f"k{i}", i))
        assert others_ran == []
        await asyncio.sleep(0)  # the next turn of the loop
    assert direct.commits == 5


async def test_a_failing_write_does_not_undo_the_others_in_its_group(
    direct: DirectSqlite,
) -> None:
    def missing(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO t VALUES ('half', 1)")
        raise NotFound("nothing here")

    outcomes = await asyncio.gather(
        direct.write(_put("a", 1)),
        direct.write(missing),
        direct.write(_put("a", 2)),  # duplicate key
        direct.write(_put("b", 3)),
        return_exceptions=True,
    )
    assert outcomes[0] == 1
    assert outcomes[3] == 3
    assert isinstance(outcomes[1], NotFound)
    assert isinstance(outcomes[2], Conflict)
    assert await direct.read(_rows) == [("a", 1), ("b", 3)]


async def test_a_canceled_caller_still_gets_its_write_committed(
    direct: DirectSqlite, tmp_path: Path
) -> None:
    blocker = sqlite3.connect(tmp_path / "d.db", isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # so the write waits on the thread, cancellable
    task = asyncio.ensure_future(direct.write(_put("kept", 7)))
    await _until(lambda: direct._committer is not None)  # the write waits on the thread
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    blocker.execute("COMMIT")
    blocker.close()
    await direct.close()  # waits for the commit in flight
    assert await direct.read(_rows) == [("kept", 7)]


async def test_an_idle_store_commits_a_single_write_at_once(direct: DirectSqlite) -> None:
    # "At once": committed before the loop runs anything else, so it waited for nothing
    # (no batching window, no thread hop).
    others_ran: list[bool] = []
    asyncio.get_running_loop().call_soon(others_ran.append, True)
    assert await direct.write(_put("only", 1)) == 1
    assert others_ran == []
    assert direct.commits == 1
    # Visible to another connection: it is committed, not just buffered.
    path = direct._path
    with sqlite3.connect(path) as other:
        assert _rows(other) == [("only", 1)]
    other.close()


async def test_the_log_is_rewound_under_steady_writes(
    direct: DirectSqlite, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A passive checkpoint never caught up with a log written to all the time, so the log
    # was never rewound and grew by every commit (hundreds of MB a minute under load).
    monkeypatch.setattr("flowrunner.storage.sql.direct.connection.CHECKPOINT_EVERY", 10)
    wal = tmp_path / "d.db-wal"

    # Writes go on while a checkpoint copies the log (what the passive pass never caught up
    # with), but at most ``ahead`` commits' worth: a busy machine's slow fsync must not let
    # them outrun it without bound, or the log's size would measure the machine.
    ahead = 20
    began: dict[asyncio.Task[None], int] = {}

    async def keep_pace() -> None:
        running = direct._checkpointing
        if running is None or running.done():
            return
        if direct.commits - began.setdefault(running, direct.commits) >= ahead:
            await asyncio.wait([running])

    def put_page(key: str) -> Callable[[sqlite3.Connection], None]:
        # A page of its own a row: the log grows with the writes however they are grouped.
        def work(conn: sqlite3.Connection) -> None:
            conn.execute("INSERT INTO t VALUES (?, randomblob(4000))", (key,))

        return work

    async def writer(n: int) -> None:
        for i in range(250):
            await direct.write(put_page(f"w{n}-{i:03}"))
            await asyncio.sleep(0)  # other work of the loop between writes, as in a server
            await keep_pace()

    await asyncio.gather(*(writer(n) for n in range(8)))
    assert direct.commits > 50  # several checkpoints' worth (eight writers share rounds)
    assert began  # writes went on while checkpoints ran
    # Unrewound, these 2000 rows (a 4 KB page each) make a log of over 8 MB; rewound every
    # 10 commits or so, it stays at a few dozen commits' worth at most.
    assert wal.stat().st_size < 6 * 1024 * 1024
    assert len(await direct.read(_rows)) == 2000
