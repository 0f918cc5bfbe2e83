"""Deliveries know their run: ``webhook_deliveries.execution_id`` names the execution whose
state change wrote the delivery, so retention deletes them together.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 18:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable, no default: a catalog-only change on PostgreSQL. Deliveries written before
    # this revision keep None (no run known): retention leaves them, as it leaves test sends.
    with op.batch_alter_table("webhook_deliveries") as batch:
        batch.add_column(sa.Column("execution_id", sa.String(length=32), nullable=True))
    op.create_index(
        op.f("ix_webhook_deliveries_execution_id"),
        "webhook_deliveries",
        ["execution_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_webhook_deliveries_execution_id"), table_name="webhook_deliveries")
    with op.batch_alter_table("webhook_deliveries") as batch:
        batch.drop_column("execution_id")
