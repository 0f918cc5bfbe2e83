"""The SQL schema, as SQLAlchemy Core tables; Alembic migrations must produce exactly this
(``tests/storage/sql/test_migrations.py`` compares them).

Portable types only: JSON (JSON on PostgreSQL, TEXT on SQLite), timestamps with time zone
(naive UTC text on SQLite, see ``UTCDateTime``), ids as 32-char strings. Every listing has an
index that starts with ``account_id`` and ends with its sort key, so a page is a short index
range scan whatever the table size.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.types import TypeDecorator

from flowrunner.storage.sql.sqlite import optional_text_time, optional_time_text

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, on every dialect.

    SQLite has no time zone type: values are stored as naive UTC text, whose lexical order is
    the chronological order, and given their zone back on read. The text is ``time_text``'s,
    which the plain-sqlite3 hot path writes and reads too: one codec for both drivers.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use aware UTC datetimes")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    # On SQLite the shared codec replaces the dialect's own DATETIME text processing (same
    # column type, same stored text), so both drivers cannot drift apart.
    def bind_processor(self, dialect: Dialect) -> Any:
        if dialect.name == "sqlite":
            return optional_time_text
        return super().bind_processor(dialect)

    def result_processor(self, dialect: Dialect, coltype: Any) -> Any:
        if dialect.name == "sqlite":
            return optional_text_time
        return super().result_processor(dialect, coltype)


def _id(name: str = "id", *args: Any, **kw: Any) -> Column[str]:
    return Column(name, String(32), *args, **kw)


def _time(name: str, nullable: bool = False) -> Column[datetime]:
    return Column(name, UTCDateTime(), nullable=nullable)


class AnyJSON(JSON):
    """JSON for a column that may hold any JSON value, declared ``TEXT`` on SQLite.

    SQLite gives a column declared ``JSON`` numeric affinity: the text of a bare JSON number
    (``42``, ``1.0``, ``-0.0``) is stored as an INTEGER or REAL, reads back as a Python number
    instead of JSON text (the decoder then fails), and loses its type (``1.0`` becomes ``1``)
    or digits. ``TEXT`` affinity keeps the text exactly as written.
    """

    cache_ok = True


@compiles(AnyJSON, "sqlite")
def _any_json_on_sqlite(type_: AnyJSON, compiler: Any, **kw: Any) -> str:
    return "TEXT"


def _json(name: str, nullable: bool = True, *, scalar: bool = False) -> Column[Any]:
    """A JSON column; ``scalar`` when its value may be a bare number (see ``AnyJSON``).
    The others always hold an object or an array, which no affinity touches."""
    # none_as_null: Python None is SQL NULL, not the JSON text 'null', on both dialects.
    kind = AnyJSON if scalar else JSON
    return Column(name, kind(none_as_null=True), nullable=nullable)


accounts = Table(
    "accounts",
    metadata,
    _id(primary_key=True),
    Column("username", String(255), nullable=False, unique=True),
    Column("password_hash", Text, nullable=False),
    Column("is_admin", Boolean, nullable=False),
    Column("disabled", Boolean, nullable=False),
    _time("created_at"),
    _time("updated_at"),
    Index(None, "created_at", "id"),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    _id(primary_key=True),
    _id("account_id", ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(255), nullable=False),
    Column("prefix", String(64), nullable=False),
    Column("token_hash", String(255), nullable=False, unique=True),
    _time("created_at"),
    _time("last_used_at", nullable=True),
    _time("expires_at", nullable=True),
    _time("revoked_at", nullable=True),
    Index(None, "account_id", "created_at", "id"),
)

flows = Table(
    "flows",
    metadata,
    _id(primary_key=True),
    _id("account_id", nullable=False),
    Column("name", String(255), nullable=False),
    Column("description", Text, nullable=False),
    _json("tags", nullable=False),
    Column("current_version", Integer, nullable=False),
    _time("created_at"),
    _time("updated_at"),
    _time("deleted_at", nullable=True),
    Index(None, "account_id", "created_at", "id"),
)

# Tags again, one row each, so "flows carrying tag X" is an indexed lookup on every dialect.
flow_tags = Table(
    "flow_tags",
    metadata,
    _id("flow_id", ForeignKey("flows.id", ondelete="CASCADE"), primary_key=True),
    Column("tag", String(255), primary_key=True),
    Index(None, "tag", "flow_id"),
)

flow_versions = Table(
    "flow_versions",
    metadata,
    _id("flow_id", ForeignKey("flows.id", ondelete="CASCADE"), primary_key=True),
    Column("number", Integer, primary_key=True, autoincrement=False),
    _id("account_id", nullable=False),
    Column("yaml", Text, nullable=False),
    Column("checksum", String(64), nullable=False),
    Column("author", String(255), nullable=True),
    _time("created_at"),
    Column("message", Text, nullable=True),  # added by 0006: last, as ALTER TABLE puts it
)

secrets = Table(
    "secrets",
    metadata,
    _id("account_id", primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("ciphertext", LargeBinary, nullable=False),
    Column("key_id", String(255), nullable=False),
    _json("metadata", nullable=False),
    _time("created_at"),
    _time("updated_at"),
    Index(None, "key_id", "account_id", "key"),
)

executions = Table(
    "executions",
    metadata,
    _id(primary_key=True),
    _id("account_id", nullable=False),
    _id("flow_id", nullable=False),
    Column("flow_version", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    _json("input", scalar=True),
    _json("output", scalar=True),
    _json("error"),
    Column("progress", Float, nullable=False),
    Column("current_node", String(255), nullable=True),
    _time("created_at"),
    _time("started_at", nullable=True),
    _time("finished_at", nullable=True),
    Column("lease_owner", String(255), nullable=True),
    _time("lease_expires_at", nullable=True),
    Column("idempotency_key", String(255), nullable=True),
    # The next event number lives on the row: bumping it takes the row lock, which is what
    # keeps concurrent appends gap-free and ordered.
    Column("last_event_seq", Integer, nullable=False),
    # Resumptions since the run last saved a checkpoint: the poison-run guard's count.
    Column("resume_attempts", Integer, nullable=False, server_default="0"),
    # The execution whose flow node started this one (a sub-flow); None at the top level.
    _id("parent_id", nullable=True),
    # Model-call token usage, totals and per node (set when the run ends).
    _json("usage"),
    # A waiting run: when the waker takes it (NULL: a signal only), and what it waits for.
    _time("wake_at", nullable=True),
    _json("wait"),
    UniqueConstraint("account_id", "idempotency_key"),
    Index(None, "account_id", "created_at", "id"),
    Index(None, "account_id", "status", "created_at", "id"),
    Index(None, "account_id", "flow_id", "created_at", "id"),
    Index(None, "account_id", "parent_id", "created_at", "id"),
    Index(None, "lease_expires_at"),
    Index(None, "wake_at"),  # the waker's sweep; NULL for every run not waiting on a timer
    # Recovery's other sweep: active runs nobody ever leased (their creator died first).
    Index(None, "status", "created_at"),
)

# Where a running execution is, written by its runner with every step. Not on the executions
# row: that row holds the run input, and SQLite rewrites a row whole (its overflow pages too)
# whenever its size changes, as a node name of another length would make it do at every node.
# The final status copies the progress into the executions row and deletes this one.
execution_positions = Table(
    "execution_positions",
    metadata,
    _id("execution_id", ForeignKey("executions.id", ondelete="CASCADE"), primary_key=True),
    Column("progress", Float, nullable=True),
    Column("current_node", String(255), nullable=True),
)

execution_events = Table(
    "execution_events",
    metadata,
    _id("execution_id", ForeignKey("executions.id", ondelete="CASCADE"), primary_key=True),
    Column("seq", Integer, primary_key=True, autoincrement=False),
    _id("account_id", nullable=False),
    Column("type", String(255), nullable=False),
    _json("data", nullable=False),
    _time("created_at"),
)

checkpoints = Table(
    "checkpoints",
    metadata,
    _id("execution_id", ForeignKey("executions.id", ondelete="CASCADE"), primary_key=True),
    _id("account_id", nullable=False),
    _json("shared", scalar=True),
    Column("next_node", String(255), nullable=True),
    _json("results", nullable=False),
    _time("updated_at"),
    # The runner's resume bookkeeping (an object; NULL, as rows from before 0004 had, is {}).
    _json("resume"),
)

webhook_endpoints = Table(
    "webhook_endpoints",
    metadata,
    _id(primary_key=True),
    _id("account_id", nullable=False),
    Column("url", Text, nullable=False),
    _json("events", nullable=False),
    Column("secret", Text, nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("description", Text, nullable=False),
    _time("created_at"),
    _time("updated_at"),
    Index(None, "account_id", "created_at", "id"),
)

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    _id(primary_key=True),
    _id("account_id", nullable=False),
    _id("endpoint_id", ForeignKey("webhook_endpoints.id", ondelete="CASCADE"), nullable=False),
    Column("event_type", String(255), nullable=False),
    _json("payload", nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    _time("next_attempt_at"),
    _time("created_at"),
    Column("last_status_code", Integer, nullable=True),
    Column("last_error", Text, nullable=True),
    _time("delivered_at", nullable=True),
    Column("claimed_by", String(255), nullable=True),
    _time("claimed_until", nullable=True),
    # The run whose state change wrote it. No foreign key: ExecutionStore.delete removes a
    # run's deliveries itself, with their attempts in kv_entries (no cascade reaches those).
    _id("execution_id", nullable=True),
    Index(None, "status", "next_attempt_at"),
    Index(None, "account_id", "created_at", "id"),
    Index(None, "endpoint_id"),
    Index(None, "execution_id"),
)

audit_records = Table(
    "audit_records",
    metadata,
    Column("chain", String(255), primary_key=True),
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("action", String(255), nullable=False),
    _id("account_id", nullable=True),
    Column("actor", String(255), nullable=True),
    Column("target", String(255), nullable=True),
    _json("data", nullable=False),
    _time("created_at"),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Index(None, "account_id", "created_at", "chain", "seq"),
)

# The last link of each chain; appends lock this row, so two writers can never both link to
# the same predecessor.
audit_heads = Table(
    "audit_heads",
    metadata,
    Column("chain", String(255), primary_key=True),
    Column("seq", Integer, nullable=False),
    Column("hash", String(64), nullable=False),
)

kv_entries = Table(
    "kv_entries",
    metadata,
    _id("account_id", primary_key=True),
    Column("namespace", String(255), primary_key=True),
    Column("key", String(512), primary_key=True),
    _json("value", scalar=True),
    _time("created_at"),
    _time("updated_at"),
    _time("expires_at", nullable=True),
    Index(None, "expires_at"),
)

ALL_TABLES = tuple(metadata.sorted_tables)
