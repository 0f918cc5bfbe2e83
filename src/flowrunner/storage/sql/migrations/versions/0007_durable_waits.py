"""Durable waits: a ``waiting`` execution keeps when it is due (``wake_at``) and what it
waits for (``wait``), and the waker finds the due ones by ``wake_at``.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 11:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable, no default: catalog-only changes on PostgreSQL; no existing run is waiting.
    with op.batch_alter_table("executions") as batch:
        batch.add_column(sa.Column("wake_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("wait", sa.JSON(none_as_null=True), nullable=True))
    op.create_index(op.f("ix_executions_wake_at"), "executions", ["wake_at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_executions_wake_at"), table_name="executions")
    with op.batch_alter_table("executions") as batch:
        batch.drop_column("wait")
        batch.drop_column("wake_at")
