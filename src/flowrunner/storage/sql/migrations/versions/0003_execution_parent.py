"""Child executions: ``executions.parent_id`` names the run whose ``flow`` node started it.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07 05:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable, no default: existing rows are top-level runs, and adding a nullable column is
    # a catalog-only change on PostgreSQL (no table rewrite under a lock).
    with op.batch_alter_table("executions") as batch:
        batch.add_column(sa.Column("parent_id", sa.String(length=32), nullable=True))
    op.create_index(
        op.f("ix_executions_account_id_parent_id_created_at_id"),
        "executions",
        ["account_id", "parent_id", "created_at", "id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_executions_account_id_parent_id_created_at_id"), table_name="executions")
    with op.batch_alter_table("executions") as batch:
        batch.drop_column("parent_id")
