"""Execution leases: who runs an execution, and crash recovery of expired ones.

Every lease change is one conditional ``UpdateItem`` on the execution item, so the item itself
decides races: two workers acquiring a free lease, or two recovery loops claiming the same
expired one, cannot both satisfy the condition. The ``gsi3`` queue (active + leased executions
by expiry) only proposes candidates; its eventual consistency can cost a wasted write, never a
double claim.
"""

from __future__ import annotations

import builtins
from datetime import datetime, timedelta

from flowrunner.errors import Conflict
from flowrunner.storage.dynamodb.accounts import EXISTS, account_pk
from flowrunner.storage.dynamodb.client import ConditionFailed
from flowrunner.storage.dynamodb.codec import ts
from flowrunner.storage.dynamodb.due_queue import claim_due
from flowrunner.storage.dynamodb.execution_items import (
    LEASE_QUEUE,
    WAIT_QUEUE,
    ExecutionTable,
    exec_sk,
    lease_key,
    to_execution,
)
from flowrunner.storage.dynamodb.expr import Expr
from flowrunner.storage.records import ACTIVE_STATUSES, DETACHED_KEY_PREFIX, Execution


def _take(owner: str, until: datetime, execution_id: str) -> Expr:
    return (
        Expr()
        .set("lease_owner", owner)
        .set("lease_expires_at", ts(until))
        .set("gsi3sk", lease_key(until, execution_id))
    )


class Leases(ExecutionTable):
    async def acquire_lease(
        self, account_id: str, execution_id: str, *, owner: str, ttl: timedelta
    ) -> Execution:
        now = self._clock()
        expr = _take(owner, now + ttl, execution_id)
        free = (
            f"{expr.missing('lease_owner')} OR {expr.eq('lease_owner', owner)}"
            f" OR {expr.le('lease_expires_at', ts(now))}"
        )
        return await self._lease_write(account_id, execution_id, expr, f"{EXISTS} AND ({free})")

    async def renew_lease(
        self, account_id: str, execution_id: str, *, owner: str, ttl: timedelta
    ) -> Execution:
        expr = _take(owner, self._clock() + ttl, execution_id)
        condition = f"{EXISTS} AND {expr.eq('lease_owner', owner)}"
        return await self._lease_write(account_id, execution_id, expr, condition)

    async def release_lease(self, account_id: str, execution_id: str, *, owner: str) -> None:
        expr = Expr().remove("lease_owner", "lease_expires_at", "gsi3sk")
        try:
            await self._t.update(
                account_pk(account_id), exec_sk(execution_id), expr,
                condition=expr.eq("lease_owner", owner),
            )  # fmt: skip
        except ConditionFailed:
            # Not (or no longer) ours: a no-op, but a missing execution is still NotFound.
            await self._load(account_id, execution_id)

    async def admin_claim_expired_leases(
        self,
        *,
        owner: str,
        ttl: timedelta,
        limit: int = 100,
        unleased_after: timedelta | None = None,
    ) -> builtins.list[Execution]:
        now = self._clock()
        born_before = ts(now - (ttl if unleased_after is None else unleased_after))
        return await claim_due(
            self._t, LEASE_QUEUE, now, limit,
            lambda pk, sk: self._claim(pk, sk, owner, now, ttl, born_before),
        )  # fmt: skip

    async def _claim(
        self, pk: str, sk: str, owner: str, now: datetime, ttl: timedelta, born_before: str
    ) -> Execution | None:
        expr = _take(owner, now + ttl, sk.removeprefix("EXEC#"))
        expr.set_expr(
            "resume_attempts",
            f"if_not_exists({expr.n('resume_attempts')}, {expr.v(0)}) + {expr.v(1)}",
        )
        unleased = f"{expr.missing('lease_expires_at')} AND {expr.le('created_at', born_before)}"
        condition = (
            f"{EXISTS} AND {expr.is_in('status', list(ACTIVE_STATUSES))}"
            f" AND ({expr.le('lease_expires_at', ts(now))} OR ({unleased}))"
            # A sub-flow's child run is resumed by its parent, never on its own (an on-failure
            # run is: its parent has ended).
            f" AND ({expr.missing('parent_id')}"
            f" OR begins_with({expr.n('idempotency_key')}, {expr.v(DETACHED_KEY_PREFIX)}))"
        )
        try:
            return to_execution(await self._t.update(pk, sk, expr, condition=condition))
        except ConditionFailed:
            return None  # renewed, released, finished or claimed by someone else meanwhile

    async def admin_claim_due_waits(
        self, *, owner: str, ttl: timedelta, limit: int = 100
    ) -> builtins.list[Execution]:
        now = self._clock()
        return await claim_due(
            self._t, WAIT_QUEUE, now, limit, lambda pk, sk: self._wake(pk, sk, owner, now, ttl)
        )

    async def _wake(
        self, pk: str, sk: str, owner: str, now: datetime, ttl: timedelta
    ) -> Execution | None:
        # Running and leased: from the waker's queue into the crash-recovery one.
        expr = _take(owner, now + ttl, sk.removeprefix("EXEC#"))
        expr.set("status", "running").set("gsi3pk", LEASE_QUEUE).remove("wake_at")
        condition = f"{EXISTS} AND {expr.eq('status', 'waiting')} AND {expr.le('wake_at', ts(now))}"
        try:
            return to_execution(await self._t.update(pk, sk, expr, condition=condition))
        except ConditionFailed:
            return None  # signaled, canceled or woken by someone else meanwhile

    async def _lease_write(
        self, account_id: str, execution_id: str, expr: Expr, condition: str
    ) -> Execution:
        try:
            fields = await self._t.update(
                account_pk(account_id), exec_sk(execution_id), expr, condition=condition
            )
        except ConditionFailed:
            current = await self._load(account_id, execution_id)
            raise Conflict(
                "execution is leased by another owner",
                execution_id=execution_id,
                lease_owner=current.get("lease_owner"),
            ) from None
        return to_execution(fields)
