"""Executions in SQL: create (with idempotency keys), read, list, and compare-and-set updates.

Events and checkpoints live in ``execution_steps``, leases in ``execution_leases``;
``SqlExecutions`` is the whole ``ExecutionStore``. On a SQLite file the store uses
``direct.executions.DirectExecutions`` instead, which overrides the hot calls.
"""

from __future__ import annotations

import builtins
from collections.abc import Collection, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from flowrunner.errors import Conflict, NotFound
from flowrunner.storage.protocols import DEFAULT_LIMIT
from flowrunner.storage.records import (
    Execution,
    ExecutionEvent,
    ExecutionStatus,
    JSONValue,
    NewDelivery,
    NewEvent,
    Page,
    leased,
    new_id,
    no_version_to_pin,
)
from flowrunner.storage.sql.database import columns_of
from flowrunner.storage.sql.execution_leases import SqlLeases
from flowrunner.storage.sql.execution_rows import (
    RUNS,
    T,
    ended_position,
    get_execution,
    this,
    to_execution,
)
from flowrunner.storage.sql.execution_steps import SqlExecutionSteps
from flowrunner.storage.sql.paging import time_page
from flowrunner.storage.sql.tables import (
    checkpoints,
    execution_events,
    execution_positions,
    executions,
    flows,
)
from flowrunner.storage.sql.webhooks import (
    delete_run_deliveries,
    has_pending_delivery,
    insert_outbox,
)


class SqlExecutions(SqlExecutionSteps, SqlLeases):
    async def create(
        self,
        account_id: str,
        *,
        flow_id: str,
        flow_version: int | None,
        input: JSONValue = None,
        idempotency_key: str | None = None,
        status: ExecutionStatus = "queued",
        parent_id: str | None = None,
        lease_owner: str | None = None,
        lease_ttl: timedelta | None = None,
    ) -> Execution:
        now = self._clock()
        execution = Execution(
            id=new_id(),
            account_id=account_id,
            flow_id=flow_id,
            flow_version=flow_version or 0,
            status=status,
            input=input,
            created_at=now,
            idempotency_key=idempotency_key,
            parent_id=parent_id,
            **leased(lease_owner, lease_ttl, now),
        )
        return await self._insert(execution, pin=flow_version is None)

    async def _insert(self, execution: Execution, *, pin: bool = False) -> Execution:
        """Insert ``execution``; ``Conflict`` if its idempotency key is used in its account.
        With ``pin``, its flow version is the flow's current one, read in the same
        transaction (``NotFound`` without a live flow that has one)."""
        key = execution.idempotency_key
        used = select(T.id).where(T.account_id == execution.account_id, T.idempotency_key == key)
        current = select(flows.c.current_version).where(
            flows.c.id == execution.flow_id,
            flows.c.account_id == execution.account_id,
            flows.c.deleted_at.is_(None),
        )

        async def work(conn: AsyncConnection) -> Execution:
            nonlocal execution
            if pin:
                version = await conn.scalar(current)
                if not version:
                    raise no_version_to_pin(execution.account_id, execution.flow_id)
                execution = replace(execution, flow_version=version)
            if key is not None and await conn.scalar(used) is not None:
                raise Conflict("idempotency key already used", idempotency_key=key)
            await conn.execute(executions.insert().values(**columns_of(execution)))
            return execution

        return await self._db.write(work)

    async def get(self, account_id: str, execution_id: str) -> Execution:
        async def work(conn: AsyncConnection) -> Execution:
            return await get_execution(conn, account_id, execution_id)

        return await self._db.read(work)

    async def get_by_idempotency_key(self, account_id: str, key: str) -> Execution:
        stmt = RUNS.where(T.account_id == account_id, T.idempotency_key == key)

        async def work(conn: AsyncConnection) -> Execution:
            row = (await conn.execute(stmt)).first()
            if row is None:
                raise NotFound("execution not found", account_id=account_id, idempotency_key=key)
            return to_execution(row)

        return await self._db.read(work)

    async def list(
        self,
        account_id: str,
        *,
        limit: int = DEFAULT_LIMIT,
        cursor: str | None = None,
        status: Collection[ExecutionStatus] = (),
        flow_id: str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        parent_id: str | None = None,
    ) -> Page[Execution]:
        stmt = RUNS.where(T.account_id == account_id)
        if parent_id is not None:
            stmt = stmt.where(T.parent_id == parent_id)
        if status:
            stmt = stmt.where(T.status.in_(list(status)))
        if flow_id is not None:
            stmt = stmt.where(T.flow_id == flow_id)
        if created_after is not None:
            stmt = stmt.where(T.created_at >= created_after)
        if created_before is not None:
            stmt = stmt.where(T.created_at < created_before)

        async def work(conn: AsyncConnection) -> Page[Execution]:
            return await time_page(
                conn, stmt, executions, limit=limit, cursor=cursor, record=to_execution
            )

        return await self._db.read(work)

    async def delete(
        self,
        account_id: str,
        execution_ids: Sequence[str],
        *,
        statuses: Collection[ExecutionStatus],
    ) -> builtins.list[str]:
        ids, wanted = builtins.list(dict.fromkeys(execution_ids)), builtins.list(statuses)
        if not ids or not wanted:
            return []

        async def work(conn: AsyncConnection) -> builtins.list[str]:
            # The status is checked by the DELETE itself, so a run resumed since it was
            # chosen stays, as does one with a delivery still to send; its children go by
            # id (and by the foreign keys' cascade), its deliveries with their attempts.
            gone = await conn.execute(
                delete(executions)
                .where(
                    T.account_id == account_id,
                    T.id.in_(ids),
                    T.status.in_(wanted),
                    ~has_pending_delivery(T.id),
                )
                .returning(T.id)
            )
            deleted = [row[0] for row in gone]
            if deleted:
                for table in (execution_events, checkpoints, execution_positions):
                    await conn.execute(delete(table).where(table.c.execution_id.in_(deleted)))
                await delete_run_deliveries(conn, account_id, deleted)
            return deleted

        return await self._db.write(work)

    async def update(
        self,
        account_id: str,
        execution_id: str,
        *,
        expected_status: Collection[ExecutionStatus] = (),
        status: ExecutionStatus | None = None,
        output: JSONValue = None,
        error: Mapping[str, JSONValue] | None = None,
        progress: float | None = None,
        current_node: str | None = None,
        started_at: datetime | None = None,
        finished_at: datetime | None = None,
        release_lease: bool = False,
        drop_checkpoint: bool = False,
        outbox: Sequence[NewDelivery] = (),
        usage: Mapping[str, JSONValue] | None = None,
        wake_at: datetime | None = None,
        wait: Mapping[str, JSONValue] | None = None,
        expected_seq: int | None = None,
        events: Sequence[NewEvent] = (),
    ) -> Execution:
        given = {
            "status": status, "output": output, "error": dict(error) if error else error,
            "progress": progress, "current_node": current_node, "started_at": started_at,
            "finished_at": finished_at, "usage": dict(usage) if usage else usage,
            "wake_at": wake_at, "wait": dict(wait) if wait is not None else None,
        }  # fmt: skip
        values = {k: v for k, v in given.items() if v is not None}
        if status is not None and status != "waiting":
            values["wake_at"] = None
        if release_lease:
            values |= {"lease_owner": None, "lease_expires_at": None}
        expected = list(expected_status)
        return await self._set(
            account_id, execution_id, values, expected, drop_checkpoint, outbox,
            ended=release_lease, expected_seq=expected_seq, events=events,
        )  # fmt: skip

    async def _set(
        self,
        account_id: str,
        execution_id: str,
        values: dict[str, Any],
        expected_status: Collection[str],
        drop_checkpoint: bool,
        outbox: Sequence[NewDelivery] = (),
        *,
        ended: bool = False,
        expected_seq: int | None = None,
        events: Sequence[NewEvent] = (),
    ) -> Execution:
        """Set ``values`` where the status is one of ``expected_status`` (if any) and the
        last event number is ``expected_seq`` (if given); ``Conflict``
        when it is not, ``NotFound`` when there is no such execution. ``drop_checkpoint``
        deletes the run's checkpoint in the same transaction; ``ended`` moves the progress of
        its position row into the execution (unless ``values`` sets it), clears
        ``current_node`` and deletes that row; ``outbox`` entries are added to the webhook
        outbox in it too, and ``events`` appended, numbered up to the row's new
        ``last_event_seq`` (the row lock orders them as ``record_step``'s bump does)."""
        if ended:  # the run ends: it keeps the progress it reached, and runs nowhere
            values = ended_position(execution_id) | values
        count = len(events)
        if count:
            values = values | {"last_event_seq": T.last_event_seq + count}
        stmt = update(executions).where(*this(account_id, execution_id))
        if expected_status:
            stmt = stmt.where(T.status.in_(expected_status))
        if expected_seq is not None:
            stmt = stmt.where(T.last_event_seq == expected_seq)
        if not values:  # nothing to set: still check existence and expected status
            stmt = stmt.values(id=T.id)
        stmt = stmt.values(**values).returning(*executions.c)
        C = checkpoints.c
        drop = delete(checkpoints).where(C.execution_id == execution_id, C.account_id == account_id)

        async def work(conn: AsyncConnection) -> Execution:
            row = (await conn.execute(stmt)).first()
            if row is None:
                current = await get_execution(conn, account_id, execution_id)
                raise Conflict(
                    f"execution is {current.status}",
                    execution_id=execution_id,
                    status=current.status,
                )
            if drop_checkpoint:
                await conn.execute(drop)
            if ended:
                await conn.execute(
                    delete(execution_positions).where(
                        execution_positions.c.execution_id == execution_id
                    )
                )
            if outbox:
                await insert_outbox(
                    conn, account_id, outbox, self._clock(), execution_id=execution_id
                )
            if count:
                now, first = self._clock(), row.last_event_seq - count + 1
                await conn.execute(
                    insert(execution_events),
                    [
                        columns_of(ExecutionEvent(
                            execution_id, account_id, first + i, e.type, dict(e.data),
                            e.time or now,
                        ))
                        for i, e in enumerate(events)
                    ],
                )  # fmt: skip
            return to_execution(row)

        return await self._db.write(work)
