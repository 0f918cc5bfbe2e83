"""What the parts of ``SqlExecutions`` share: the store's state and the execution row.

``SqlExecutions`` (runs) is built from ``SqlExecutionSteps`` (events and checkpoints) and
``SqlLeases``, each in its module, as the DynamoDB backend is.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row, Select, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from flowrunner.errors import NotFound
from flowrunner.storage.records import Clock, Execution
from flowrunner.storage.sql.database import Database
from flowrunner.storage.sql.tables import execution_positions, executions

T = executions.c
P = execution_positions.c
RUNS: Select[Any] = select(
    *(c for c in executions.c if c.name not in ("progress", "current_node")),
    func.coalesce(P.progress, T.progress).label("progress"),
    func.coalesce(P.current_node, T.current_node).label("current_node"),
).select_from(executions.outerjoin(execution_positions, P.execution_id == T.id))
"""Executions as readers see them: where one is comes from its position row while it runs
(see ``tables.execution_positions``)."""


def ended_position(execution_id: str) -> dict[str, Any]:
    """What a run's final write sets: the progress it reached, and no current node."""
    reached = select(P.progress).where(P.execution_id == execution_id).scalar_subquery()
    return {"progress": func.coalesce(reached, T.progress), "current_node": None}


class ExecutionTable:
    def __init__(self, db: Database, clock: Clock) -> None:
        self._db, self._clock = db, clock


def to_execution(r: Row[Any]) -> Execution:
    return Execution(**{name: getattr(r, name) for name in Execution.__slots__})


def this(account_id: str, execution_id: str) -> tuple[Any, ...]:
    """The WHERE of one execution of one account."""
    return (T.id == execution_id, T.account_id == account_id)


async def get_execution(conn: AsyncConnection, account_id: str, execution_id: str) -> Execution:
    row = (await conn.execute(RUNS.where(*this(account_id, execution_id)))).first()
    if row is None:
        raise NotFound("execution not found", account_id=account_id, execution_id=execution_id)
    return to_execution(row)
