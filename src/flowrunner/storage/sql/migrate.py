"""Bringing a database to the latest schema, safely when several processes start at once.

The migration runs under a lock held for its whole duration: ``pg_advisory_lock`` on
PostgreSQL (released with the session even if the process dies), an exclusive ``flock`` on a
``<db>.migrate.lock`` file beside a SQLite database. The second process waits, then finds
nothing left to do.

Alembic (with Mako and Pygments ~100 modules, ~0.2 s and ~10 MB) is imported only when there is
something to migrate: a database already at head is recognised with one query on
``alembic_version``, against the head read from the revision files' ``revision`` lines.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
from collections.abc import AsyncIterator
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError

from flowrunner.storage.protocols.migrations import MigrationStatus
from flowrunner.storage.sql.database import Database
from flowrunner.storage.sql.errors import translate

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"
# An arbitrary constant naming Flowrunner's migration lock among PostgreSQL advisory locks.
PG_MIGRATION_LOCK = 0x466C6F7752756E


def alembic_config() -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def head_revision() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def _upgrade_sync(connection: Connection) -> None:
    cfg = alembic_config()
    cfg.attributes["connection"] = connection
    from alembic import command

    command.upgrade(cfg, "head")


def current_revision(connection: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()


_REVISION = re.compile(r"^revision\s*=\s*[\"']([^\"']+)[\"']", re.MULTILINE)
_DOWN = re.compile(r"^down_revision\s*=\s*(.+)$", re.MULTILINE)


@lru_cache(maxsize=1)
def plain_revisions() -> frozenset[str] | None:
    """Every revision read from the files without Alembic; None when the history is not a
    plain chain of one ``revision``/``down_revision`` pair per file (Alembic decides then)."""
    revisions = _plain_chain()
    return None if revisions is None else frozenset(revisions[0])


@lru_cache(maxsize=1)
def plain_head() -> str | None:
    """The head revision read from the files without Alembic; None when the history is not
    a plain chain of one ``revision``/``down_revision`` pair per file (Alembic decides then).

    A test holds it equal to Alembic's own ``head_revision()``.
    """
    chain = _plain_chain()
    if chain is None:
        return None
    revisions, pointed_to = chain
    heads = revisions - pointed_to
    return heads.pop() if len(heads) == 1 else None


def _plain_chain() -> tuple[set[str], set[str]] | None:
    """The revisions and the revisions some file revises; None unless one pair per file."""
    revisions: set[str] = set()
    pointed_to: set[str] = set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        source = path.read_text(encoding="utf-8")
        revision, down = _REVISION.findall(source), _DOWN.findall(source)
        if len(revision) != 1 or len(down) != 1:
            return None
        revisions.add(revision[0])
        pointed_to.update(re.findall(r"[\"']([^\"']+)[\"']", down[0]))
    return revisions, pointed_to


async def _versions(db: Database) -> list[str]:
    async with db.engine.connect() as conn:
        rows = (await conn.execute(text("SELECT version_num FROM alembic_version"))).all()
        await conn.rollback()
    return [row[0] for row in rows]


async def _at_head(db: Database) -> bool:
    """Whether ``db`` is at the head revision, known with one query (False when unsure)."""
    head = plain_head()
    if head is None:
        return False
    try:
        versions = await _versions(db)
    except DBAPIError:  # no alembic_version table yet: an empty database
        return False
    return versions == [head]


async def migration_status(db: Database) -> MigrationStatus:
    """Where ``db``'s schema is against this code's revisions, with one query and without
    Alembic (``/readyz`` asks); ``StorageError`` if it does not answer or was never
    migrated (no ``alembic_version``)."""
    head, known = plain_head(), plain_revisions()
    try:
        versions = await _versions(db)
    except DBAPIError as exc:
        raise translate(exc) from exc
    if head is None or known is None or len(versions) != 1:
        return MigrationStatus("unknown", versions[0] if versions else None, head)
    (revision,) = versions
    if revision == head:
        return MigrationStatus("current", revision, head)
    return MigrationStatus("behind" if revision in known else "ahead", revision, head)


async def upgrade_database(db: Database) -> None:
    """Migrate ``db`` to head under the cross-process migration lock (nothing to do, no lock
    and no Alembic, when it is at head already: migrations only ever move forward)."""
    try:
        if await _at_head(db):
            return
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
