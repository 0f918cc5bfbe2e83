"""Migrations: from empty to head on SQLite and PostgreSQL, no drift from the models, and no
race when several processes start at once."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, inspect

from flowrunner.storage import upgrade
from flowrunner.storage.sql import SqlStore
from flowrunner.storage.sql.database import Database
from flowrunner.storage.sql.migrate import _at_head, current_revision, head_revision, plain_head
from flowrunner.storage.sql.tables import metadata
from tests.storage.conftest import scratch_postgres_database


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty database: a new SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
    else:
        server: str = request.getfixturevalue("postgres_server")
        yield from scratch_postgres_database(server, migrate=False)


async def _inspect(url: str, fn: Any) -> Any:
    db = Database(url)
    try:
        async with db.engine.connect() as conn:
            return await conn.run_sync(fn)
    finally:
        await db.close()


async def test_upgrade_from_empty_creates_every_table_at_head(empty_url: str) -> None:
    await upgrade(empty_url)
    tables = await _inspect(empty_url, lambda c: set(inspect(c).get_table_names()))
    assert {t.name for t in metadata.sorted_tables} <= tables
    assert await _inspect(empty_url, current_revision) == head_revision()


async def test_migrated_schema_matches_the_models(empty_url: str) -> None:
    await upgrade(empty_url)

    def diff(conn: Connection) -> list[Any]:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(context, metadata))

    assert await _inspect(empty_url, diff) == []


async def test_upgrade_twice_is_a_no_op(empty_url: str) -> None:
    await upgrade(empty_url)
    await upgrade(empty_url)
    assert await _inspect(empty_url, current_revision) == head_revision()


async def test_stores_starting_together_migrate_once_without_error(empty_url: str) -> None:
    stores = [SqlStore(empty_url) for _ in range(3)]
    try:
        await asyncio.gather(*(s.connect() for s in stores))
        account = await stores[0].accounts.create("ada", "h")
        assert await stores[2].accounts.get(account.id) == account
    finally:
        await asyncio.gather(*(s.close() for s in stores))


async def test_upgrade_of_sqlite_keeps_events_and_turns_numbers_stored_as_numbers_to_json(
    tmp_path: Path,
) -> None:
    """0002 re-declares JSON columns TEXT on SQLite without rebuilding ``executions`` (a
    rebuild would cascade-delete its events and checkpoints); a bare number stored before as
    an INTEGER/REAL (unreadable) reads back as that number."""
    import sqlite3

    from alembic import command

    from flowrunner.storage.sql.migrate import alembic_config

    url = f"sqlite:///{tmp_path / 'old.db'}"

    def to_0001(conn: Connection) -> None:
        cfg = alembic_config()
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")

    db = Database(url)
    try:
        async with db.engine.connect() as conn:
            await conn.run_sync(to_0001)
            await conn.commit()
    finally:
        await db.close()
    raw = sqlite3.connect(tmp_path / "old.db")
    raw.execute(
        "INSERT INTO executions (id, account_id, flow_id, flow_version, status, input, output,"
        " progress, created_at, last_event_seq) VALUES ('e1', 'a1', 'f1', 1, 'running', '{}',"
        " '42', 0, '2026-01-01 00:00:00.000000', 1)"
    )
    raw.execute(
        "INSERT INTO execution_events VALUES ('e1', 1, 'a1', 'status', '{}',"
        " '2026-01-01 00:00:00.000000')"
    )
    raw.execute(
        "INSERT INTO checkpoints VALUES ('e1', 'a1', '7', 'b', '{}', '2026-01-01 00:00:00.000000')"
    )
    raw.commit()
    assert raw.execute("SELECT typeof(output) FROM executions").fetchone() == ("integer",)
    raw.close()

    await upgrade(url)
    store = SqlStore(url, migrate=False)
    await store.connect()
    try:
        run = await store.executions.get("a1", "e1")
        assert (run.output, run.input, run.resume_attempts) == (42, {}, 0)
        assert len(await store.executions.list_events("a1", "e1")) == 1
        checkpoint = await store.executions.get_checkpoint("a1", "e1")
        assert checkpoint is not None
        assert checkpoint.shared == 7
    finally:
        await store.close()


async def test_upgrade_moves_the_resume_bookkeeping_out_of_checkpoint_results(
    empty_url: str,
) -> None:
    """0004: checkpoints saved with ``results["$resume"]`` (runs in progress, failed runs kept
    for a resume) read back with it in ``resume`` and only node outputs in ``results``."""
    from datetime import UTC, datetime

    from alembic import command

    from flowrunner.storage.sql.migrate import alembic_config
    from flowrunner.storage.sql.tables import checkpoints, executions

    when = datetime(2026, 1, 1, tzinfo=UTC)
    meta = {"last_node": "a", "steps": 1, "total": 3, "error": None}

    def at_0003_with_an_old_checkpoint(conn: Connection) -> None:
        cfg = alembic_config()
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0003")
        conn.execute(
            executions.insert().values(
                id="e1", account_id="a1", flow_id="f1", flow_version=1, status="failed",
                input={}, progress=0.33, created_at=when, last_event_seq=0,
            )
        )  # fmt: skip
        conn.execute(
            checkpoints.insert().values(
                execution_id="e1", account_id="a1", shared={}, next_node="b",
                results={"a": {"v": 1}, "$resume": meta}, updated_at=when,
            )
        )  # fmt: skip

    db = Database(empty_url)
    try:
        async with db.engine.connect() as conn:
            await conn.run_sync(at_0003_with_an_old_checkpoint)
            await conn.commit()
    finally:
        await db.close()

    await upgrade(empty_url)
    store = SqlStore(empty_url, migrate=False)
    await store.connect()
    try:
        checkpoint = await store.executions.get_checkpoint("a1", "e1")
        assert checkpoint is not None
        assert dict(checkpoint.results) == {"a": {"v": 1}}
        assert checkpoint.resume == meta
    finally:
        await store.close()


async def test_upgrade_keeps_versions_saved_before_messages_existed(empty_url: str) -> None:
    """0006: a version stored at 0004 reads back with no message; new ones keep theirs."""
    from datetime import UTC, datetime

    from alembic import command

    from flowrunner.storage.sql.migrate import alembic_config

    when = datetime(2026, 1, 1, tzinfo=UTC)

    def at_0004_with_a_version(conn: Connection) -> None:
        cfg = alembic_config()
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0004")
        conn.exec_driver_sql(
            "INSERT INTO flows (id, account_id, name, description, tags, current_version,"
            " created_at, updated_at) VALUES ('f1', 'a1', 'old', '', '[]', 1, '2026-01-01',"
            " '2026-01-01')"
        )
        conn.exec_driver_sql(
            "INSERT INTO flow_versions (flow_id, number, account_id, yaml, checksum, author,"
            " created_at) VALUES ('f1', 1, 'a1', 'a: 1', 'x', 'ada', '2026-01-01')"
        )

    db = Database(empty_url)
    try:
        async with db.engine.connect() as conn:
            await conn.run_sync(at_0004_with_a_version)
            await conn.commit()
    finally:
        await db.close()

    await upgrade(empty_url)
    store = SqlStore(empty_url, migrate=False)
    await store.connect()
    try:
        old = await store.flows.get_version("a1", "f1", 1)
        assert (old.yaml, old.author, old.message) == ("a: 1", "ada", None)
        new = await store.flows.add_version("a1", "f1", yaml="a: 2", message="second")
        assert (await store.flows.get_version("a1", "f1", 2)).message == "second"
        assert new.created_at > when
    finally:
        await store.close()


def test_the_head_read_without_alembic_is_alembics_head() -> None:
    # A database at this revision is opened without importing Alembic (migrate._at_head).
    assert plain_head() == head_revision()


async def test_a_database_at_head_is_not_migrated_again(empty_url: str) -> None:
    await upgrade(empty_url)
    db = Database(empty_url)
    try:
        assert await _at_head(db)
    finally:
        await db.close()


async def test_upgrade_keeps_deliveries_written_before_they_named_their_run(
    empty_url: str,
) -> None:
    """0008: a delivery stored at 0007 reads back with no run; the status says behind, then
    current."""
    from alembic import command

    from flowrunner.storage.sql.migrate import alembic_config, migration_status

    def at_0007_with_a_delivery(conn: Connection) -> None:
        cfg = alembic_config()
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0007")
        conn.exec_driver_sql(
            "INSERT INTO webhook_endpoints (id, account_id, url, events, secret, enabled,"
            " description, created_at, updated_at) VALUES ('w1', 'a1', 'https://x.test', '[]',"
            " 's', true, '', '2026-01-01', '2026-01-01')"
        )
        conn.exec_driver_sql(
            "INSERT INTO webhook_deliveries (id, account_id, endpoint_id, event_type, payload,"
            " status, attempts, next_attempt_at, created_at) VALUES ('d1', 'a1', 'w1',"
            " 'execution.completed', '{}', 'delivered', 1, '2026-01-01', '2026-01-01')"
        )

    db = Database(empty_url)
    try:
        async with db.engine.connect() as conn:
            await conn.run_sync(at_0007_with_a_delivery)
            await conn.commit()
        behind = await migration_status(db)
        assert (behind.state, behind.revision, behind.head) == ("behind", "0007", plain_head())
        await upgrade(empty_url)
        assert (await migration_status(db)).state == "current"
    finally:
        await db.close()

    store = SqlStore(empty_url, migrate=False)
    await store.connect()
    try:
        old = await store.webhooks.get_delivery("a1", "d1")
        assert (old.status, old.execution_id) == ("delivered", None)
    finally:
        await store.close()
