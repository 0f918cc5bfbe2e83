"""One SQLite file, two drivers: connections set up alike, times written alike, and each path
reads what the other wrote."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from flowrunner.storage import NewCheckpoint, NewEvent
from flowrunner.storage.sql import SqlStore
from flowrunner.storage.sql.direct.executions import DirectExecutions
from flowrunner.storage.sql.executions import SqlExecutions
from flowrunner.storage.sql.sqlite import text_time, time_text

# Not busy_timeout: the event loop's own connection never waits on a lock, by design.
SETTINGS = ("journal_mode", "journal_size_limit", "synchronous", "foreign_keys")


@pytest.fixture
async def stores(sqlite_template: Path, tmp_path: Path) -> AsyncIterator[tuple[SqlStore, SqlStore]]:
    """The same file through the hot path and through SQLAlchemy alone."""
    db = tmp_path / "both.db"
    db.write_bytes(sqlite_template.read_bytes())
    direct = SqlStore(f"sqlite:///{db}", migrate=False)
    plain = SqlStore(f"sqlite:///{db}", migrate=False, direct=False)
    await direct.connect()
    await plain.connect()
    yield direct, plain
    await plain.close()
    await direct.close()


def test_the_store_picks_its_executions_once_by_driver(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    assert type(SqlStore(url).executions) is DirectExecutions
    assert type(SqlStore(url, direct=False).executions) is SqlExecutions
    # One connection only: nothing to bypass.
    assert type(SqlStore("sqlite:///:memory:").executions) is SqlExecutions


async def test_both_drivers_set_up_their_connections_alike(
    stores: tuple[SqlStore, SqlStore],
) -> None:
    direct, plain = stores
    assert direct.db.direct is not None

    def read_direct(conn: sqlite3.Connection) -> dict[str, Any]:
        return {name: conn.execute(f"PRAGMA {name}").fetchone()[0] for name in SETTINGS}

    async def read_plain(conn: AsyncConnection) -> dict[str, Any]:
        return {name: await conn.scalar(text(f"PRAGMA {name}")) for name in SETTINGS}

    on_thread = await direct.db.direct.read(read_direct)
    assert on_thread == await plain.db.read(read_plain)
    assert on_thread["journal_mode"] == "wal"
    assert on_thread["foreign_keys"] == 1
    # LIKE is case-sensitive on both (a write-only pragma: observed, not read back).
    like = "SELECT 'Abc' LIKE 'abc'"
    assert await direct.db.direct.read(lambda c: c.execute(like).fetchone()[0]) == 0
    assert (await plain.db.first(text(like)))[0] == 0  # type: ignore[index]


async def test_each_driver_reads_what_the_other_wrote(stores: tuple[SqlStore, SqlStore]) -> None:
    direct, plain = stores
    account = await plain.accounts.create("ada", "h")
    flow = await plain.flows.create(account.id, name="f", tags=["a", "b"])
    await plain.secrets.put(account.id, "TOKEN", ciphertext=b"\x00c", key_id="k", metadata={"m": 1})
    assert await direct.flows.get(account.id, flow.id) == flow
    assert await direct.secrets.list(account.id) == await plain.secrets.list(account.id)

    for writer, reader in ((direct, plain), (plain, direct)):
        run = await writer.executions.create(
            account.id,
            flow_id=flow.id,
            flow_version=1,
            input={"x": 1.0},
            idempotency_key="k" if writer is direct else "k2",
        )
        assert await reader.executions.get(account.id, run.id) == run
        started = datetime(2026, 5, 1, 12, 0, 0, 1, tzinfo=timezone(timedelta(hours=2)))
        run = await writer.executions.update(
            account.id, run.id, status="running", started_at=started, error={"e": None}
        )
        assert run.started_at == started.astimezone(UTC)
        assert await reader.executions.get(account.id, run.id) == run
        at = datetime(2026, 5, 1, 10, 0, 0, 7, tzinfo=UTC)
        events = await writer.executions.record_step(
            account.id, run.id, [NewEvent("node.finished", {"n": 1}, time=at)],
            checkpoint=NewCheckpoint({"s": [1]}, "next", {"a": "b"}),
        )  # fmt: skip
        assert await reader.executions.list_events(account.id, run.id) == events
        checkpoint = await reader.executions.get_checkpoint(account.id, run.id)
        assert checkpoint is not None
        assert checkpoint.shared == {"s": [1]}
        leased = await writer.executions.acquire_lease(
            account.id, run.id, owner="w", ttl=timedelta(seconds=30)
        )
        assert await reader.executions.get(account.id, run.id) == leased


async def test_times_are_stored_as_naive_utc_text_in_time_order(
    stores: tuple[SqlStore, SqlStore], tmp_path: Path
) -> None:
    direct, plain = stores
    account = await plain.accounts.create("ada", "h")
    for store in (direct, plain):
        run = await store.executions.create(account.id, flow_id="f", flow_version=1)
        until = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=-1)))
        await store.executions.update(account.id, run.id, started_at=until)
        with sqlite3.connect(tmp_path / "both.db") as raw:
            stored = raw.execute(
                "SELECT started_at FROM executions WHERE id = ?", (run.id,)
            ).fetchone()[0]
        raw.close()
        assert stored == "2026-01-02 04:04:05.000000"


def test_time_text_sorts_as_time_and_round_trips() -> None:
    times = [datetime(2026, 1, 1, tzinfo=UTC) + timedelta(microseconds=n) for n in (0, 1, 10**6)]
    texts = [time_text(t) for t in times]
    assert sorted(texts) == texts
    assert [text_time(t) for t in texts] == times


def test_a_naive_time_is_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        time_text(datetime(2026, 1, 1))
