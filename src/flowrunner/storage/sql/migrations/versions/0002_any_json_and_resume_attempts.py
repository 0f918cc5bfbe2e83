"""Any JSON value in executions/checkpoints/kv on SQLite; resume attempts; unleased-run index.

- SQLite: ``executions.input``/``output``, ``checkpoints.shared`` and ``kv_entries.value`` are
  re-declared ``TEXT`` (were ``JSON``, which has numeric affinity: a bare JSON number was stored
  as a number and could not be read back). Done with ADD/UPDATE/DROP/RENAME COLUMN, not a table
  rebuild: dropping ``executions`` to rebuild it would cascade-delete every event and
  checkpoint. Needs SQLite 3.35 or later. Values stored as numbers become their text again.
- ``executions.resume_attempts``: the poison-run guard's durable count.
- An index on ``executions (status, created_at)`` for recovery's sweep of runs never leased.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-07 05:20:00
"""

from __future__ import annotations

import sqlite3

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_RETYPED = (
    ("executions", "input"),
    ("executions", "output"),
    ("checkpoints", "shared"),
    ("kv_entries", "value"),
)


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        if sqlite3.sqlite_version_info < (3, 35, 0):
            raise RuntimeError(
                f"this upgrade needs SQLite 3.35 or later (DROP COLUMN); Python here uses"
                f" {sqlite3.sqlite_version}: upgrade the system's libsqlite3"
            )
        for table, column in _RETYPED:
            _retype_as_text(table, column)
    op.add_column(
        "executions",
        sa.Column("resume_attempts", sa.Integer(), nullable=False, server_default="0"),
    )
    op.create_index(op.f("ix_executions_status_created_at"), "executions", ["status", "created_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_executions_status_created_at"), table_name="executions")
    op.drop_column("executions", "resume_attempts")


def _retype_as_text(table: str, column: str) -> None:
    scratch = f"{column}__text"
    op.execute(f'ALTER TABLE "{table}" ADD COLUMN "{scratch}" TEXT')
    # Assigning to a TEXT column turns a value stored as a number back into its text.
    op.execute(f'UPDATE "{table}" SET "{scratch}" = "{column}"')
    op.execute(f'ALTER TABLE "{table}" DROP COLUMN "{column}"')
    op.execute(f'ALTER TABLE "{table}" RENAME COLUMN "{scratch}" TO "{column}"')
