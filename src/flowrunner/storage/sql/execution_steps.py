"""Execution events (gap-free sequence numbers) and checkpoints in SQL."""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, bindparam, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from flowrunner.errors import NotFound
from flowrunner.storage.pagination import clamp_limit
from flowrunner.storage.protocols import MAX_LIMIT
from flowrunner.storage.records import (
    Checkpoint,
    Clock,
    ExecutionEvent,
    JSONValue,
    NewCheckpoint,
    NewDelivery,
    NewEvent,
)
from flowrunner.storage.sql.database import Database, columns_of
from flowrunner.storage.sql.execution_rows import ExecutionTable, T, get_execution
from flowrunner.storage.sql.tables import (
    checkpoints,
    execution_events,
    execution_positions,
    executions,
)
from flowrunner.storage.sql.webhooks import insert_outbox

# Hot-path statements built once: SQLAlchemy then finds them in its compiled cache instead of
# building and hashing a new statement tree per call.
_BUMP_SEQ = (
    update(executions)
    .where(T.id == bindparam("e"), T.account_id == bindparam("a"))
    .values(last_event_seq=T.last_event_seq + bindparam("n"))
    .returning(T.last_event_seq)
)
# A step that saves a checkpoint made progress: the poison-run guard starts counting again.
_BUMP_SEQ_PROGRESS = _BUMP_SEQ.values(resume_attempts=0)
_INSERT_EVENT = insert(execution_events)


def _event(r: Row[Any]) -> ExecutionEvent:
    return ExecutionEvent(r.execution_id, r.account_id, r.seq, r.type, r.data, r.created_at)


def _checkpoint(r: Row[Any]) -> Checkpoint:
    return Checkpoint(
        r.execution_id, r.account_id, r.shared, r.next_node, r.results, r.updated_at,
        r.resume or {},
    )  # fmt: skip


def _upsert(db: Database) -> Any:
    stmt = db.insert(checkpoints)
    return stmt.on_conflict_do_update(
        index_elements=[checkpoints.c.execution_id],
        set_={
            c: stmt.excluded[c] for c in ("shared", "next_node", "results", "updated_at", "resume")
        },
    )


def _upsert_position(db: Database) -> Any:
    """Where a run is, None values leaving what the row has."""
    stmt = db.insert(execution_positions)
    P = execution_positions.c
    return stmt.on_conflict_do_update(
        index_elements=[P.execution_id],
        set_={c: func.coalesce(stmt.excluded[c], P[c]) for c in ("progress", "current_node")},
    )


class SqlExecutionSteps(ExecutionTable):
    def __init__(self, db: Database, clock: Clock) -> None:
        super().__init__(db, clock)
        self._upsert_checkpoint = _upsert(db)
        self._upsert_position = _upsert_position(db)

    async def append_events(
        self, account_id: str, execution_id: str, events: Sequence[NewEvent]
    ) -> builtins.list[ExecutionEvent]:
        return await self.record_step(account_id, execution_id, events)

    async def record_step(
        self,
        account_id: str,
        execution_id: str,
        events: Sequence[NewEvent],
        *,
        checkpoint: NewCheckpoint | None = None,
        progress: float | None = None,
        current_node: str | None = None,
        outbox: Sequence[NewDelivery] = (),
    ) -> builtins.list[ExecutionEvent]:
        position = None
        if progress is not None or current_node is not None:
            position = {"execution_id": execution_id, "progress": progress}
            position["current_node"] = current_node
        return await self._record(
            account_id, execution_id, events, checkpoint, self._clock(), position, outbox
        )

    async def _record(
        self,
        account_id: str,
        execution_id: str,
        events: Sequence[NewEvent],
        checkpoint: NewCheckpoint | None,
        now: datetime,
        position: dict[str, Any] | None = None,
        outbox: Sequence[NewDelivery] = (),
    ) -> builtins.list[ExecutionEvent]:
        """Number and insert ``events``, upsert ``checkpoint`` and ``position`` (if any), add
        the ``outbox`` entries: one transaction."""
        saved = None
        if checkpoint is not None:
            saved = {
                "execution_id": execution_id,
                "account_id": account_id,
                "shared": checkpoint.shared,
                "next_node": checkpoint.next_node,
                "results": dict(checkpoint.results),
                "updated_at": now,
                "resume": dict(checkpoint.resume),
            }
        count = len(events)
        # The sequence bump proves the execution exists (no separate read for it) and
        # reserves the numbers: it takes the execution's row lock until commit, so concurrent
        # appenders get consecutive, non-overlapping ranges, and a rolled-back append gives its
        # range back: no gaps.
        bump = _BUMP_SEQ if saved is None else _BUMP_SEQ_PROGRESS
        bump_params = {"a": account_id, "e": execution_id, "n": count}

        async def work(conn: AsyncConnection) -> builtins.list[ExecutionEvent]:
            last = await conn.scalar(bump, bump_params)
            if last is None:
                raise NotFound(
                    "execution not found", account_id=account_id, execution_id=execution_id
                )
            first = last - count + 1
            new = [
                ExecutionEvent(
                    execution_id, account_id, first + i, e.type, dict(e.data), e.time or now
                )
                for i, e in enumerate(events)
            ]
            if new:
                await conn.execute(_INSERT_EVENT, [columns_of(e) for e in new])
            if saved is not None:
                await conn.execute(self._upsert_checkpoint, saved)
            if position is not None:
                await conn.execute(self._upsert_position, position)
            if outbox:
                await insert_outbox(conn, account_id, outbox, now, execution_id=execution_id)
            return new

        return await self._db.write(work)

    async def list_events(
        self,
        account_id: str,
        execution_id: str,
        *,
        after_seq: int = 0,
        limit: int = MAX_LIMIT,
    ) -> builtins.list[ExecutionEvent]:
        E = execution_events.c
        stmt = (
            select(execution_events)
            .where(E.execution_id == execution_id, E.account_id == account_id, E.seq > after_seq)
            .order_by(E.seq)
            .limit(clamp_limit(limit))
        )

        async def work(conn: AsyncConnection) -> builtins.list[ExecutionEvent]:
            rows = (await conn.execute(stmt)).all()
            if not rows:
                await get_execution(conn, account_id, execution_id)  # NotFound, or no events
            return [_event(r) for r in rows]

        return await self._db.read(work)

    async def save_checkpoint(
        self,
        account_id: str,
        execution_id: str,
        *,
        shared: JSONValue,
        next_node: str | None,
        results: Mapping[str, JSONValue],
        resume: Mapping[str, JSONValue] | None = None,
    ) -> Checkpoint:
        checkpoint = Checkpoint(
            execution_id, account_id, shared, next_node, dict(results), self._clock(),
            dict(resume or {}),
        )  # fmt: skip

        async def work(conn: AsyncConnection) -> Checkpoint:
            await get_execution(conn, account_id, execution_id)
            await conn.execute(self._upsert_checkpoint, columns_of(checkpoint))
            return checkpoint

        return await self._db.write(work)

    async def get_checkpoint(self, account_id: str, execution_id: str) -> Checkpoint | None:
        C = checkpoints.c
        stmt = select(checkpoints).where(C.execution_id == execution_id, C.account_id == account_id)

        async def work(conn: AsyncConnection) -> Checkpoint | None:
            await get_execution(conn, account_id, execution_id)
            row = (await conn.execute(stmt)).first()
            return _checkpoint(row) if row is not None else None

        return await self._db.read(work)
