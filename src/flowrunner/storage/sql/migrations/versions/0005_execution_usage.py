"""Model-call token usage with the execution: ``executions.usage`` (run totals and per node).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07 11:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable, no default: a catalog-only change on PostgreSQL. Runs that ended before it
    # keep their usage in their final event (GET .../usage still reads it there).
    with op.batch_alter_table("executions") as batch:
        batch.add_column(sa.Column("usage", sa.JSON(none_as_null=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("executions") as batch:
        batch.drop_column("usage")
