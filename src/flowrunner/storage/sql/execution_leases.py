"""Execution leases in SQL: who runs an execution, and crash recovery of expired ones.

Every lease change is one conditional ``UPDATE … RETURNING`` on the execution row, so the row
decides races: two workers taking a free lease cannot both match the condition.
"""

from __future__ import annotations

import builtins
from datetime import datetime, timedelta

from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from flowrunner.errors import Conflict
from flowrunner.storage.pagination import clamp_limit
from flowrunner.storage.records import ACTIVE_STATUSES, DETACHED_KEY_PREFIX, Execution
from flowrunner.storage.sql.execution_rows import (
    ExecutionTable,
    T,
    get_execution,
    this,
    to_execution,
)
from flowrunner.storage.sql.tables import executions


class SqlLeases(ExecutionTable):
    async def acquire_lease(
        self, account_id: str, execution_id: str, *, owner: str, ttl: timedelta
    ) -> Execution:
        now = self._clock()
        return await self._lease(account_id, execution_id, owner, now, now + ttl, renew=False)

    async def renew_lease(
        self, account_id: str, execution_id: str, *, owner: str, ttl: timedelta
    ) -> Execution:
        now = self._clock()
        return await self._lease(account_id, execution_id, owner, now, now + ttl, renew=True)

    async def _lease(
        self,
        account_id: str,
        execution_id: str,
        owner: str,
        now: datetime,
        until: datetime,
        *,
        renew: bool,
    ) -> Execution:
        """Take (or, with ``renew``, extend) ``owner``'s lease; ``Conflict`` if another holds
        it. A free lease is one nobody holds, an expired one, or the owner's own."""
        mine = T.lease_owner == owner
        free = mine if renew else or_(T.lease_owner.is_(None), T.lease_expires_at <= now, mine)
        stmt = (
            update(executions)
            .where(*this(account_id, execution_id), free)
            .values(lease_owner=owner, lease_expires_at=until)
            .returning(*executions.c)
        )

        async def work(conn: AsyncConnection) -> Execution:
            row = (await conn.execute(stmt)).first()
            if row is None:
                current = await get_execution(conn, account_id, execution_id)
                raise Conflict("execution is leased", lease_owner=current.lease_owner)
            return to_execution(row)

        return await self._db.write(work)

    async def release_lease(self, account_id: str, execution_id: str, *, owner: str) -> None:
        stmt = (
            update(executions)
            .where(*this(account_id, execution_id), T.lease_owner == owner)
            .values(lease_owner=None, lease_expires_at=None)
        )

        async def work(conn: AsyncConnection) -> None:
            if (await conn.execute(stmt)).rowcount == 0:
                await get_execution(conn, account_id, execution_id)  # NotFound; else a no-op

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
        # A sub-flow's child run is resumed by its parent, never on its own (an on-failure
        # run is: its parent has ended).
        expired = (
            T.status.in_(ACTIVE_STATUSES),
            or_(T.lease_expires_at <= now, unleased),
            or_(T.parent_id.is_(None), T.idempotency_key.startswith(DETACHED_KEY_PREFIX)),
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
            return [to_execution(r) for r in (await conn.execute(stmt)).all()]

        return await self._db.write(work)

    async def admin_claim_due_waits(
        self, *, owner: str, ttl: timedelta, limit: int = 100
    ) -> builtins.list[Execution]:
        now = self._clock()
        due = (T.status == "waiting", T.wake_at <= now)
        # As for expired leases: SKIP LOCKED candidates in a CTE, re-checked by the UPDATE.
        candidates = (
            select(T.id)
            .where(*due)
            .order_by(T.wake_at, T.id)
            .limit(clamp_limit(limit))
            .with_for_update(skip_locked=True)
            .cte("candidates")
        )
        stmt = (
            update(executions)
            .where(T.id.in_(select(candidates.c.id)), *due)
            .values(status="running", wake_at=None, lease_owner=owner, lease_expires_at=now + ttl)
            .returning(*executions.c)
        )

        async def work(conn: AsyncConnection) -> builtins.list[Execution]:
            return [to_execution(r) for r in (await conn.execute(stmt)).all()]

        return await self._db.write(work)
