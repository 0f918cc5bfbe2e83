"""The SQL engine layer: URL forms, driver errors translated, SQLite writers that never see
"database is locked"."""

from __future__ import annotations

import asyncio
import sys
import threading
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from flowrunner.errors import StorageError, StorageUnavailable
from flowrunner.storage import NewEvent
from flowrunner.storage.sql import SqlStore, database
from flowrunner.storage.sql.database import normalize_url
from tests.conftest import HANG_GUARD


@pytest.mark.parametrize(
    ("given", "driver"),
    [
        ("sqlite:///x.db", "sqlite+aiosqlite"),
        ("sqlite+aiosqlite:///x.db", "sqlite+aiosqlite"),
        ("postgresql://u@h/db", "postgresql+asyncpg"),
        ("postgres://u@h/db", "postgresql+asyncpg"),
        ("postgresql+asyncpg://u@h/db", "postgresql+asyncpg"),
    ],
)
def test_urls_are_normalized_to_async_drivers(given: str, driver: str) -> None:
    assert normalize_url(given).drivername == driver


def test_other_databases_are_rejected() -> None:
    with pytest.raises(StorageError, match="unsupported"):
        normalize_url("mysql://u@h/db")


async def test_unreachable_postgres_is_storage_unavailable_after_retries(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(database, "RETRY_DELAYS", (0.01, 0.01))
    store = SqlStore("postgresql://nobody@127.0.0.1:1/none", migrate=False)
    with pytest.raises(StorageUnavailable):
        await store.connect()
    await store.close()


async def test_unopenable_sqlite_file_is_storage_unavailable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(database, "RETRY_DELAYS", ())
    store = SqlStore(f"sqlite:///{tmp_path / 'missing-dir' / 'x.db'}", migrate=False)
    before = set(threading.enumerate())
    with pytest.raises(StorageUnavailable):
        await store.connect()
    await store.close()
    # aiosqlite stops its worker thread after a failed connect without awaiting it; let the
    # thread finish while this test's loop is still open, or it reports to a closed loop.
    started = [
        t
        for t in set(threading.enumerate()) - before
        if "_connection_worker_thread" in t.name  # aiosqlite's (Thread(target=...) names it)
    ]
    async with asyncio.timeout(HANG_GUARD):
        while any(t.is_alive() for t in started):  # noqa: ASYNC110 - a thread, no event
            await asyncio.sleep(0.01)


async def test_two_stores_on_one_sqlite_file_write_concurrently(tmp_path: Path) -> None:
    # Two stores do not share the in-process write lock: this is what two processes see.
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    first, second = SqlStore(url), SqlStore(url)
    await asyncio.gather(first.connect(), second.connect())
    try:
        account = await first.accounts.create("ada", "h")
        run = await first.executions.create(account.id, flow_id="f", flow_version=1)

        async def writer(store: SqlStore, n: int) -> None:
            for i in range(n):
                await store.executions.append_events(account.id, run.id, [NewEvent("e", {"i": i})])

        await asyncio.gather(*(writer(s, 40) for s in (first, second) for _ in range(3)))
        events = await second.executions.list_events(account.id, run.id)
        assert [e.seq for e in events] == list(range(1, 241))
    finally:
        await first.close()
        await second.close()


async def _kill_other_connections(url: str) -> None:
    dsn = make_url(url).set(drivername="postgresql").render_as_string(False)
    admin = await asyncpg.connect(dsn)
    try:
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    finally:
        await admin.close()


@pytest.mark.postgres
@pytest.mark.parametrize("pre_ping", [True, False])
async def test_postgres_store_survives_its_connections_being_killed(
    postgres_database: str, pre_ping: bool
) -> None:
    store = SqlStore(postgres_database, migrate=False, pool_size=2, pool_pre_ping=pre_ping)
    await store.connect()
    try:
        account = await store.accounts.create(f"survivor-{pre_ping}", "h")
        await _kill_other_connections(postgres_database)
        # Pre-ping replaces the dead connection at checkout; without it, the first statement
        # fails on the dead connection and the whole transaction is re-run on a new one.
        assert (await store.accounts.get(account.id)).id == account.id
        await _kill_other_connections(postgres_database)
        await store.accounts.update(account.id, disabled=True)
        assert (await store.accounts.get(account.id)).disabled
    finally:
        await store.close()


WRITER = """
import asyncio, sys
from flowrunner.storage import NewEvent
from flowrunner.storage.sql import SqlStore

async def main(url, account_id, run_id):
    store = SqlStore(url, migrate=False)
    await store.connect()
    try:
        for i in range(60):
            await store.executions.append_events(account_id, run_id, [NewEvent("e", {"i": i})])
    finally:
        await store.close()

asyncio.run(main(*sys.argv[1:]))
"""


async def test_sqlite_writers_in_separate_processes_never_see_database_locked(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'procs.db'}"
    store = SqlStore(url)
    await store.connect()
    try:
        account = await store.accounts.create("ada", "h")
        run = await store.executions.create(account.id, flow_id="f", flow_version=1)
        procs = [
            await asyncio.create_subprocess_exec(
                sys.executable,
                "-c",
                WRITER,
                url,
                account.id,
                run.id,
                stderr=asyncio.subprocess.PIPE,
            )
            for _ in range(3)
        ]
        results = [await p.communicate() for p in procs]
        assert [p.returncode for p in procs] == [0, 0, 0], [err.decode() for _, err in results]
        events = await store.executions.list_events(account.id, run.id)
        assert [e.seq for e in events] == list(range(1, 181))
    finally:
        await store.close()
