"""Flow versions carry the author's message (``flowrunner flows push --message``).

Nullable, no default: a catalog-only change on PostgreSQL; the versions stored before it have
no message.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07 11:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("flow_versions") as batch:
        batch.add_column(sa.Column("message", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("flow_versions") as batch:
        batch.drop_column("message")
