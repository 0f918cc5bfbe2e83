"""DirectSqlite: one-hop transactions and group commit on a real SQLite file."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from flowrunner.errors import Conflict, NotFound
from flowrunner.storage.sql.direct import DirectSqlite


@pytest.fixture
async def direct(tmp_path: Path) -> AsyncIterator[DirectSqlite]:
    path = tmp_path / "d.db"
    with sqlite3.connect(path) as setup:
        setup.execute("PRAGMA journal_mode = WAL")  # as every Flowrunner database
        setup.execute("CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER)")
    setup.close()
    opened = DirectSqlite(str(path), busy_timeout_ms=1000, lock=asyncio.Lock())
    yield opened
    await opened.close()


def _put(key: str, value: int) -> Callable[[sqlite3.Connection], int]:
    def work(conn: sqlite3.Connection) -> int:
        conn.execute("INSERT INTO t VALUES (?, ?)", (key, value))
        return value

    return work


def _rows(conn: sqlite3.Connection) -> list[tuple[str, int]]:
    return list(conn.execute("SELECT k, v FROM t ORDER BY k").fetchall())


async def test_writes_to_a_locked_database_wait_on_the_thread_and_share_commits(
    direct: DirectSqlite, tmp_path: Path
) -> None:
    blocker = sqlite3.connect(tmp_path / "d.db", isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # another process writing
    writes = asyncio.gather(*(direct.write(_put(f"k{i:02}", i)) for i in range(40)))
    loop = asyncio.get_running_loop()
    started = loop.time()
    await asyncio.sleep(0.1)  # the loop is free while they wait for the lock
    assert loop.time() - started < 0.5
    assert not writes.done()
    blocker.execute("COMMIT")
    blocker.close()
    assert await writes == list(range(40))
    assert await direct.read(_rows) == [(f"k{i:02}", i) for i in range(40)]
    assert 1 <= direct.commits <= 2  # queued while the first one waited: one group


async def test_concurrent_writes_to_an_idle_store_each_commit_inline(
    direct: DirectSqlite,
) -> None:
    results = await asyncio.gather(*(direct.write(_put(f"k{i:02}", i)) for i in range(40)))
    assert results == list(range(40))
    assert await direct.read(_rows) == [(f"k{i:02}", i) for i in range(40)]
    assert direct.commits == 40


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
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    blocker.execute("COMMIT")
    blocker.close()
    await direct.close()  # waits for the commit in flight
    assert await direct.read(_rows) == [("kept", 7)]


async def test_an_idle_store_commits_a_single_write_at_once(direct: DirectSqlite) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await direct.write(_put("only", 1)) == 1
    assert loop.time() - started < 0.5
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
    monkeypatch.setattr("flowrunner.storage.sql.direct.CHECKPOINT_EVERY", 50)
    wal = tmp_path / "d.db-wal"

    async def writer(n: int) -> None:
        for i in range(250):
            await direct.write(_put(f"w{n}-{i:03}", i))
            await asyncio.sleep(0)  # other work of the loop between writes, as in a server

    await asyncio.gather(*(writer(n) for n in range(8)))
    assert direct.commits > 1000  # mostly inline; some grouped while a checkpoint ran
    # Unrewound, these 2000 commits (two 4 KB pages each) make a 17 MB log; rewound every
    # 50 commits or so, it stays at a few hundred commits' worth at most.
    assert wal.stat().st_size < 6 * 1024 * 1024
    assert len(await direct.read(_rows)) == 2000
