"""Checkpoints keep the runner's resume bookkeeping in their own column; running executions
keep where they are in ``execution_positions``.

- ``checkpoints.resume``: it used to ride in ``results`` under the reserved key ``$resume``;
  existing checkpoints (runs in progress, failed runs kept for a retry with resume) have it
  moved out, in batches.
- ``execution_positions``: progress and current node of a running execution, written with
  every step apart from the executions row (see ``tables.py``). Empty at first: a run in
  progress shows its position again from its next step.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07 08:00:00
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_OLD_KEY = "$resume"
_BATCH = 500

Change = Callable[[dict[str, Any], Any], tuple[dict[str, Any], Any]]
"""(results, resume) as stored -> as they should be."""

_checkpoints = sa.table(
    "checkpoints",
    sa.column("execution_id", sa.String(32)),
    sa.column("results", sa.JSON(none_as_null=True)),
    sa.column("resume", sa.JSON(none_as_null=True)),
)


def upgrade() -> None:
    # Nullable, no default: a catalog-only change on PostgreSQL; NULL reads as {}.
    with op.batch_alter_table("checkpoints") as batch:
        batch.add_column(sa.Column("resume", sa.JSON(none_as_null=True), nullable=True))
    _move(lambda results, resume: _split(results))
    op.create_table(
        "execution_positions",
        sa.Column("execution_id", sa.String(length=32), nullable=False),
        sa.Column("progress", sa.Float(), nullable=True),
        sa.Column("current_node", sa.String(length=255), nullable=True),
        sa.ForeignKeyConstraint(
            ["execution_id"],
            ["executions.id"],
            name=op.f("fk_execution_positions_execution_id_executions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("execution_id", name=op.f("pk_execution_positions")),
    )


def downgrade() -> None:
    op.drop_table("execution_positions")
    _move(lambda results, resume: ({**results, _OLD_KEY: resume} if resume else results, None))
    with op.batch_alter_table("checkpoints") as batch:
        batch.drop_column("resume")


def _split(results: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    rest = {k: v for k, v in results.items() if k != _OLD_KEY}
    return rest, results.get(_OLD_KEY)


def _move(change: Change) -> None:
    """Rewrite every checkpoint's (results, resume) with ``change``, keyset-paged by id."""
    conn = op.get_bind()
    C = _checkpoints.c
    after = ""
    while True:
        rows = conn.execute(
            sa.select(C.execution_id, C.results, C.resume)
            .where(C.execution_id > after)
            .order_by(C.execution_id)
            .limit(_BATCH)
        ).all()
        if not rows:
            return
        for execution_id, results, resume in rows:
            new_results, new_resume = change(results or {}, resume)
            if new_results != results or new_resume != resume:
                conn.execute(
                    sa.update(_checkpoints)
                    .where(C.execution_id == execution_id)
                    .values(results=new_results, resume=new_resume)
                )
        after = rows[-1][0]
