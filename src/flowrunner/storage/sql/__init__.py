"""The SQL backend: one implementation for SQLite (embedded default) and PostgreSQL.

``SqlStore(url)`` accepts ``sqlite:///path``, ``postgresql://...`` (or their ``+aiosqlite`` /
``+asyncpg`` forms) and migrates the schema on ``connect()`` unless told not to. On a SQLite
file, the calls every run makes go through plain ``sqlite3`` (``direct/``), on PostgreSQL
through plain asyncpg (``direct/postgres/``), unless ``direct=False``: the implementations are
chosen here, once.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncConnection

from flowrunner.storage.protocols.migrations import MigrationStatus
from flowrunner.storage.records import Clock, utcnow
from flowrunner.storage.sql.accounts import SqlAccounts, SqlTokens
from flowrunner.storage.sql.audit import SqlAudit
from flowrunner.storage.sql.database import Database
from flowrunner.storage.sql.direct.executions import DirectExecutions
from flowrunner.storage.sql.direct.kv import DirectKV
from flowrunner.storage.sql.direct.reads import DirectFlows, DirectSecrets
from flowrunner.storage.sql.direct.webhooks import DirectWebhooks
from flowrunner.storage.sql.executions import SqlExecutions
from flowrunner.storage.sql.flows import SqlFlows
from flowrunner.storage.sql.kv import SqlKV
from flowrunner.storage.sql.migrate import migration_status, upgrade_database
from flowrunner.storage.sql.secrets import SqlSecrets
from flowrunner.storage.sql.tables import ALL_TABLES
from flowrunner.storage.sql.webhooks import SqlWebhooks


class SqlStore:
    def __init__(
        self,
        url: str | URL,
        *,
        clock: Clock = utcnow,
        migrate: bool = True,
        pool_size: int = 10,
        pool_pre_ping: bool = False,
        direct: bool = True,
    ) -> None:
        # pool_pre_ping is off by default: it costs a round trip per checkout (about half the
        # throughput of small reads, see docs/storage.md), and a stale pooled connection only
        # costs a retry anyway, since a transaction that loses its connection before COMMIT is
        # re-run. SQLite never pings (a local file has no connection to lose).
        # direct=False keeps a SQLite file or PostgreSQL on SQLAlchemy alone (the conformance
        # suite runs both ways); an in-memory SQLite always is.
        self.db = db = Database(
            url, pool_size=pool_size, pool_pre_ping=pool_pre_ping, direct=direct
        )
        self._migrate = migrate
        self._connected = False
        self.accounts = SqlAccounts(db, clock)
        self.tokens = SqlTokens(db, clock)
        self.flows: SqlFlows
        self.secrets: SqlSecrets
        self.executions: SqlExecutions
        if db.direct is not None:
            self.flows = DirectFlows(db, clock, db.direct)
            self.secrets = DirectSecrets(db, clock, db.direct)
            self.executions = DirectExecutions(db, clock, db.direct)
        elif db.direct_pg is not None:
            from flowrunner.storage.sql.direct.postgres.executions import PgExecutions
            from flowrunner.storage.sql.direct.postgres.reads import PgFlows, PgSecrets

            self.flows = PgFlows(db, clock, db.direct_pg)
            self.secrets = PgSecrets(db, clock, db.direct_pg)
            self.executions = PgExecutions(db, clock, db.direct_pg)
        else:
            self.flows = SqlFlows(db, clock)
            self.secrets = SqlSecrets(db, clock)
            self.executions = SqlExecutions(db, clock)
        self.webhooks: SqlWebhooks = SqlWebhooks(db, clock)
        if db.direct is not None:  # the dispatcher's claim and record, one hop each
            self.webhooks = DirectWebhooks(db, clock, db.direct)
        self.audit = SqlAudit(db, clock)
        self.kv: SqlKV = SqlKV(db, clock) if db.direct is None else DirectKV(db, clock, db.direct)

    async def connect(self) -> None:
        if self._connected:
            return
        if self._migrate:
            await upgrade_database(self.db)
        else:  # still prove the database answers, so a bad URL fails here and not later
            await self.db.read(_ping)
        self._connected = True

    async def close(self) -> None:
        await self.db.close()
        self._connected = False

    async def migration_status(self) -> MigrationStatus:
        """The schema's revision against this code's (``Migrations``)."""
        return await migration_status(self.db)

    async def truncate_all(self) -> None:
        """Delete every row of every table (tests and benchmarks only).

        DELETE rather than TRUNCATE: on the small tables of a test it is ~10x faster on
        PostgreSQL, which matters when it runs before every test.
        """

        async def work(conn: AsyncConnection) -> None:
            for table in reversed(ALL_TABLES):  # children before parents (foreign keys)
                await conn.execute(table.delete())

        await self.db.write(work)


async def _ping(conn: AsyncConnection) -> None:
    await conn.execute(text("SELECT 1"))


__all__ = ["SqlStore"]
