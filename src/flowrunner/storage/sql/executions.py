"""Executions, their events, checkpoints and leases in SQL."""

from __future__ import annotations

import builtins
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, Select, and_, bindparam, delete, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from flowrunner.errors import Conflict, NotFound
from flowrunner.storage.pagination import clamp_limit
from flowrunner.storage.protocols import DEFAULT_LIMIT, MAX_LIMIT
from flowrunner.storage.records import (
    ACTIVE_STATUSES,
    Checkpoint,
    Clock,
    Execution,
    ExecutionEvent,
    ExecutionStatus,
    JSONValue,
    NewCheckpoint,
    NewEvent,
    Page,
    new_id,
)
from flowrunner.storage.sql import executions_direct as fast
from flowrunner.storage.sql.database import Database, columns_of
from flowrunner.storage.sql.paging import time_page
from flowrunner.storage.sql.tables import (
    checkpoints,
    execution_events,
    execution_positions,
    executions,
)

T = executions.c
P = execution_positions.c
# An execution as readers see it: where it is comes from its position row while it runs.
_RUNS: Select[Any] = select(
    *(c for c in executions.c if c.name not in ("progress", "current_node")),
    func.coalesce(P.progress, T.progress).label("progress"),
    func.coalesce(P.current_node, T.current_node).label("current_node"),
).select_from(executions.outerjoin(execution_positions, P.execution_id == T.id))


def _execution(r: Row[Any]) -> Execution:
    return Execution(**{name: getattr(r, name) for name in Execution.__slots__})


def _event(r: Row[Any]) -> ExecutionEvent:
    return ExecutionEvent(r.execution_id, r.account_id, r.seq, r.type, r.data, r.created_at)


def _checkpoint(r: Row[Any]) -> Checkpoint:
    return Checkpoint(
        r.execution_id, r.account_id, r.shared, r.next_node, r.results, r.updated_at,
        r.resume or {},
    )  # fmt: skip


def _this(account_id: str, execution_id: str) -> tuple[Any, ...]:
    return (T.id == execution_id, T.account_id == account_id)


async def _get(conn: AsyncConnection, account_id: str, execution_id: str) -> Execution:
    row = (await conn.execute(_RUNS.where(*_this(account_id, execution_id)))).first()
    if row is None:
        raise NotFound("execution not found", account_id=account_id, execution_id=execution_id)
    return _execution(row)


async def _append(
    conn: AsyncConnection,
    account_id: str,
    execution_id: str,
    events: Sequence[NewEvent],
    now: datetime,
    *,
    progress: bool = False,
) -> list[ExecutionEvent]:
    count = len(events)
    # Reserving the numbers takes the execution's row lock until commit, so concurrent
    # appenders get consecutive, non-overlapping ranges, and a rolled-back append gives its
    # range back: no gaps.
    bump = _BUMP_SEQ_PROGRESS if progress else _BUMP_SEQ
    last = await conn.scalar(bump, {"a": account_id, "e": execution_id, "n": count})
    if last is None:
        raise NotFound("execution not found", account_id=account_id, execution_id=execution_id)
    first = last - count + 1
    new = [
        ExecutionEvent(execution_id, account_id, first + i, e.type, dict(e.data), e.time or now)
        for i, e in enumerate(events)
    ]
    if new:
        await conn.execute(_INSERT_EVENT, [columns_of(e) for e in new])
    return new


def _checkpoint_row(
    account_id: str, execution_id: str, checkpoint: NewCheckpoint, now: datetime
) -> dict[str, Any]:
    return {
        "execution_id": execution_id,
        "account_id": account_id,
        "shared": checkpoint.shared,
        "next_node": checkpoint.next_node,
        "results": dict(checkpoint.results),
        "updated_at": now,
        "resume": dict(checkpoint.resume),
    }


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


def _upsert_position(db: Database) -> Any:
    stmt = db.insert(execution_positions)
    return stmt.on_conflict_do_update(
        index_elements=[P.execution_id],
        set_={c: func.coalesce(stmt.excluded[c], P[c]) for c in ("progress", "current_node")},
    )


def _ended_position(execution_id: str) -> dict[str, Any]:
    """What a run's final write sets: the progress it reached, and no current node."""
    reached = select(P.progress).where(P.execution_id == execution_id).scalar_subquery()
    return {"progress": func.coalesce(reached, T.progress), "current_node": None}


def _upsert(db: Database) -> Any:
    stmt = db.insert(checkpoints)
    return stmt.on_conflict_do_update(
        index_elements=[checkpoints.c.execution_id],
        set_={
            c: stmt.excluded[c] for c in ("shared", "next_node", "results", "updated_at", "resume")
        },
    )


class SqlExecutions:
    def __init__(self, db: Database, clock: Clock) -> None:
        self._db, self._clock = db, clock
        self._upsert_checkpoint = _upsert(db)
        self._upsert_position = _upsert_position(db)
        # SQLite: the calls of every run go through the one-hop, group-committed path.
        self._direct = db.direct

    async def create(
        self,
        account_id: str,
        *,
        flow_id: str,
        flow_version: int,
        input: JSONValue = None,
        idempotency_key: str | None = None,
        status: ExecutionStatus = "queued",
        parent_id: str | None = None,
    ) -> Execution:
        execution = Execution(
            id=new_id(),
            account_id=account_id,
            flow_id=flow_id,
            flow_version=flow_version,
            status=status,
            input=input,
            created_at=self._clock(),
            idempotency_key=idempotency_key,
            parent_id=parent_id,
        )

        if self._direct is not None:
            return await self._direct.write(lambda c: fast.insert(c, execution))

        async def work(conn: AsyncConnection) -> Execution:
            if idempotency_key is not None:
                used = select(T.id).where(
                    T.account_id == account_id, T.idempotency_key == idempotency_key
                )
                if await conn.scalar(used) is not None:
                    raise Conflict("idempotency key already used", idempotency_key=idempotency_key)
            await conn.execute(executions.insert().values(**columns_of(execution)))
            return execution

        return await self._db.write(work)

    async def get(self, account_id: str, execution_id: str) -> Execution:
        if self._direct is not None:
            return await self._direct.read(lambda c: fast.get(c, account_id, execution_id))

        async def work(conn: AsyncConnection) -> Execution:
            return await _get(conn, account_id, execution_id)

        return await self._db.read(work)

    async def get_by_idempotency_key(self, account_id: str, key: str) -> Execution:
        async def work(conn: AsyncConnection) -> Execution:
            stmt = _RUNS.where(T.account_id == account_id, T.idempotency_key == key)
            row = (await conn.execute(stmt)).first()
            if row is None:
                raise NotFound("execution not found", account_id=account_id, idempotency_key=key)
            return _execution(row)

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
        stmt = _RUNS.where(T.account_id == account_id)
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
                conn, stmt, executions, limit=limit, cursor=cursor, record=_execution
            )

        return await self._db.read(work)

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
    ) -> Execution:
        given = {
            "status": status, "output": output, "error": dict(error) if error else error,
            "progress": progress, "current_node": current_node, "started_at": started_at,
            "finished_at": finished_at,
        }  # fmt: skip
        values = {k: v for k, v in given.items() if v is not None}
        if release_lease:
            values |= {"lease_owner": None, "lease_expires_at": None}
        drop = drop_checkpoint
        if self._direct is not None:
            expected = list(expected_status)
            return await self._direct.write(
                lambda c: fast.update(
                    c, account_id, execution_id, values, expected, drop, ended=release_lease
                )
            )
        if release_lease:  # the run ends: it keeps the progress it reached, and runs nowhere
            values = _ended_position(execution_id) | values

        async def work(conn: AsyncConnection) -> Execution:
            stmt = update(executions).where(*_this(account_id, execution_id))
            if expected_status:
                stmt = stmt.where(T.status.in_(list(expected_status)))
            if not values:  # nothing to set: still check existence and expected status
                stmt = stmt.values(id=T.id)
            row = (await conn.execute(stmt.values(**values).returning(*executions.c))).first()
            if row is None:
                current = await _get(conn, account_id, execution_id)
                raise Conflict(
                    f"execution is {current.status}",
                    execution_id=execution_id,
                    status=current.status,
                )
            if drop:
                C = checkpoints.c
                await conn.execute(
                    delete(checkpoints).where(
                        C.execution_id == execution_id, C.account_id == account_id
                    )
                )
            if release_lease:
                await conn.execute(
                    delete(execution_positions).where(P.execution_id == execution_id)
                )
            return _execution(row)

        return await self._db.write(work)

    async def append_events(
        self, account_id: str, execution_id: str, events: Sequence[NewEvent]
    ) -> builtins.list[ExecutionEvent]:
        if self._direct is not None:
            return await self.record_step(account_id, execution_id, events)
        now = self._clock()

        async def work(conn: AsyncConnection) -> builtins.list[ExecutionEvent]:
            return await _append(conn, account_id, execution_id, events, now)

        return await self._db.write(work)

    async def record_step(
        self,
        account_id: str,
        execution_id: str,
        events: Sequence[NewEvent],
        *,
        checkpoint: NewCheckpoint | None = None,
        progress: float | None = None,
        current_node: str | None = None,
    ) -> builtins.list[ExecutionEvent]:
        now = self._clock()
        if self._direct is not None:
            return await self._direct.write(
                lambda c: fast.record_step(
                    c, account_id, execution_id, events, checkpoint, now, progress, current_node
                )
            )
        saved = (
            None
            if checkpoint is None
            else _checkpoint_row(account_id, execution_id, checkpoint, now)
        )

        async def work(conn: AsyncConnection) -> builtins.list[ExecutionEvent]:
            # The sequence bump proves the execution exists: no separate read for it.
            new = await _append(
                conn, account_id, execution_id, events, now, progress=saved is not None
            )
            if saved is not None:
                await conn.execute(self._upsert_checkpoint, saved)
            if progress is not None or current_node is not None:
                position = {"progress": progress, "current_node": current_node}
                await conn.execute(
                    self._upsert_position, {"execution_id": execution_id, **position}
                )
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
                await _get(conn, account_id, execution_id)  # NotFound, or simply no events
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
            await _get(conn, account_id, execution_id)
            await conn.execute(self._upsert_checkpoint, columns_of(checkpoint))
            return checkpoint

        return await self._db.write(work)

    async def get_checkpoint(self, account_id: str, execution_id: str) -> Checkpoint | None:
        C = checkpoints.c

        async def work(conn: AsyncConnection) -> Checkpoint | None:
            await _get(conn, account_id, execution_id)
            stmt = select(checkpoints).where(
                C.execution_id == execution_id, C.account_id == account_id
            )
            row = (await conn.execute(stmt)).first()
            return _checkpoint(row) if row is not None else None

        return await self._db.read(work)

    async def acquire_lease(
        self, account_id: str, execution_id: str, *, owner: str, ttl: timedelta
    ) -> Execution:
        now = self._clock()
        if self._direct is not None:
            return await self._direct.write(
                lambda c: fast.set_lease(
                    c, account_id, execution_id, owner=owner, until=now + ttl, now=now, renew=False
                )
            )
        free = or_(T.lease_owner.is_(None), T.lease_expires_at <= now, T.lease_owner == owner)
        return await self._lease(account_id, execution_id, free, owner, now + ttl)

    async def renew_lease(
        self, account_id: str, execution_id: str, *, owner: str, ttl: timedelta
    ) -> Execution:
        now = self._clock()
        if self._direct is not None:
            return await self._direct.write(
                lambda c: fast.set_lease(
                    c, account_id, execution_id, owner=owner, until=now + ttl, now=now, renew=True
                )
            )
        return await self._lease(account_id, execution_id, T.lease_owner == owner, owner, now + ttl)

    async def _lease(
        self, account_id: str, execution_id: str, condition: Any, owner: str, until: datetime
    ) -> Execution:
        async def work(conn: AsyncConnection) -> Execution:
            stmt = (
                update(executions)
                .where(*_this(account_id, execution_id), condition)
                .values(lease_owner=owner, lease_expires_at=until)
                .returning(*executions.c)
            )
            row = (await conn.execute(stmt)).first()
            if row is None:
                current = await _get(conn, account_id, execution_id)
                raise Conflict("execution is leased", lease_owner=current.lease_owner)
            return _execution(row)

        return await self._db.write(work)

    async def release_lease(self, account_id: str, execution_id: str, *, owner: str) -> None:
        if self._direct is not None:
            await self._direct.write(
                lambda c: fast.release_lease(c, account_id, execution_id, owner)
            )
            return

        async def work(conn: AsyncConnection) -> None:
            stmt = (
                update(executions)
                .where(*_this(account_id, execution_id), T.lease_owner == owner)
                .values(lease_owner=None, lease_expires_at=None)
            )
            if (await conn.execute(stmt)).rowcount == 0:
                await _get(conn, account_id, execution_id)  # NotFound; else not ours: no-op

        await self._db.write(work)

    async def admin_claim_expired_leases(
        self,
        *,
        owner: str,
        ttl: timedelta,
        limit: int = 100,
        unleased_after: timedelta | None = None,
    ) -> builtins.list[Execution]:
        now = self._clock()
        born_before = now - (ttl if unleased_after is None else unleased_after)
        unleased = and_(T.lease_expires_at.is_(None), T.created_at <= born_before)
        # A child run is resumed by its parent, never on its own.
        expired = (
            T.status.in_(ACTIVE_STATUSES),
            or_(T.lease_expires_at <= now, unleased),
            T.parent_id.is_(None),
        )
        # SKIP LOCKED (PostgreSQL): two claimers each take different rows instead of queueing
        # behind each other; the outer WHERE re-checks expiry on the locked row. SQLite ignores
        # FOR UPDATE, its writes are serialized anyway.
        candidates = (
            select(T.id)
            .where(*expired)
            .order_by(T.lease_expires_at, T.id)
            .limit(clamp_limit(limit))
            .with_for_update(skip_locked=True)
            # A CTE, so PostgreSQL picks the candidates once: as a plain IN subquery it may
            # re-run the LIMIT per outer row and claim past the limit.
            .cte("candidates")
        )
        stmt = (
            update(executions)
            .where(T.id.in_(select(candidates.c.id)), *expired)
            .values(
                lease_owner=owner,
                lease_expires_at=now + ttl,
                resume_attempts=T.resume_attempts + 1,
            )
            .returning(*executions.c)
        )

        async def work(conn: AsyncConnection) -> builtins.list[Execution]:
            return [_execution(r) for r in (await conn.execute(stmt)).all()]

        return await self._db.write(work)
