"""Bringing a database to the latest schema, safely when several processes start at once.

The migration runs under a lock held for its whole duration: ``pg_advisory_lock`` on
PostgreSQL (released with the session even if the process dies), an exclusive ``flock`` on a
``<db>.migrate.lock`` file beside a SQLite database. The second process waits, then finds
nothing left to do.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError

from flowrunner.storage.sql.database import Database
from flowrunner.storage.sql.errors import translate

MIGRATIONS = Path(__file__).parent / "migrations"
# An arbitrary constant naming Flowrunner's migration lock among PostgreSQL advisory locks.
PG_MIGRATION_LOCK = 0x466C6F7752756E


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def _upgrade_sync(connection: Connection) -> None:
    cfg = alembic_config()
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, "head")


def current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


async def upgrade_database(db: Database) -> None:
    """Migrate ``db`` to head under the cross-process migration lock."""
    try:
        async with _migration_lock(db), db.engine.connect() as conn:
            await conn.run_sync(_upgrade_sync)
            await conn.commit()
    except DBAPIError as exc:
        raise translate(exc) from exc


async def upgrade(url: str | URL) -> None:
    """Migrate the database at ``url`` to the latest schema (``flowrunner db upgrade``)."""
    db = Database(url, pool_size=1)
    try:
        await upgrade_database(db)
    finally:
        await db.close()


@contextlib.asynccontextmanager
async def _migration_lock(db: Database) -> AsyncIterator[None]:
    if db.is_sqlite:
        path = db.url.database
        if not path or path == ":memory:":
            yield  # a private in-memory database has no other process to race with
            return
        try:
            import fcntl
        except ImportError:  # Windows: no flock; SQLite's own write lock still serializes DDL
            yield
            return
        lock_path = Path(path).with_name(Path(path).name + ".migrate.lock")
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            # flock blocks; a thread keeps the event loop free while another process migrates.
            await asyncio.to_thread(fcntl.flock, fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing the descriptor releases the lock
        return
    async with db.engine.connect() as conn:
        await conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": PG_MIGRATION_LOCK})
        await conn.commit()
        try:
            yield
        finally:
            await conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": PG_MIGRATION_LOCK})
            await conn.commit()
