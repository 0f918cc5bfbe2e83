"""Executions, their events, checkpoints and leases in memory."""

from __future__ import annotations

import builtins
from collections.abc import Collection, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from flowrunner.errors import Conflict, NotFound
from flowrunner.storage.memory.state import MemoryState, json_copy, page_by_time
from flowrunner.storage.memory.webhooks import (
    add_outbox,
    delete_run_deliveries,
    has_pending_delivery,
)
from flowrunner.storage.pagination import clamp_limit
from flowrunner.storage.protocols import DEFAULT_LIMIT, MAX_LIMIT
from flowrunner.storage.records import (
    ACTIVE_STATUSES,
    Checkpoint,
    Execution,
    ExecutionEvent,
    ExecutionStatus,
    JSONValue,
    NewCheckpoint,
    NewDelivery,
    NewEvent,
    Page,
    leased,
    new_id,
    no_version_to_pin,
)


class MemoryExecutions:
    def __init__(self, state: MemoryState) -> None:
        self._s = state

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
        async with self._s.lock:
            if flow_version is None:
                flow = self._s.flows.get(flow_id)
                if (
                    flow is None
                    or flow.account_id != account_id
                    or flow.deleted_at is not None
                    or not flow.current_version
                ):
                    raise no_version_to_pin(account_id, flow_id)
                flow_version = flow.current_version
            if idempotency_key is not None and any(
                e.account_id == account_id and e.idempotency_key == idempotency_key
                for e in self._s.executions.values()
            ):
                raise Conflict("idempotency key already used", idempotency_key=idempotency_key)
            now = self._s.clock()
            execution = Execution(
                id=new_id(),
                account_id=account_id,
                flow_id=flow_id,
                flow_version=flow_version,
                status=status,
                input=json_copy(input),
                created_at=now,
                idempotency_key=idempotency_key,
                parent_id=parent_id,
                **leased(lease_owner, lease_ttl, now),
            )
            self._s.executions[execution.id] = execution
            return execution

    async def get(self, account_id: str, execution_id: str) -> Execution:
        execution = self._s.executions.get(execution_id)
        if execution is None or execution.account_id != account_id:
            raise NotFound("execution not found", account_id=account_id, execution_id=execution_id)
        return execution

    async def get_by_idempotency_key(self, account_id: str, key: str) -> Execution:
        for e in self._s.executions.values():
            if e.account_id == account_id and e.idempotency_key == key:
                return e
        raise NotFound("execution not found", account_id=account_id, idempotency_key=key)

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
        rows = [
            e
            for e in self._s.executions.values()
            if e.account_id == account_id
            and (not status or e.status in status)
            and (flow_id is None or e.flow_id == flow_id)
            and (parent_id is None or e.parent_id == parent_id)
            and (created_after is None or e.created_at >= created_after)
            and (created_before is None or e.created_at < created_before)
        ]
        return page_by_time(rows, limit=limit, cursor=cursor, key=lambda e: (e.created_at, e.id))

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
        async with self._s.lock:
            e = await self.get(account_id, execution_id)
            if (expected_status and e.status not in expected_status) or (
                expected_seq is not None and e.last_event_seq != expected_seq
            ):
                raise Conflict(
                    f"execution is {e.status}", execution_id=execution_id, status=e.status
                )
            if status is not None and status != "waiting":
                e = replace(e, wake_at=None)
            e = replace(
                e,
                status=e.status if status is None else status,
                output=e.output if output is None else json_copy(output),
                error=e.error if error is None else json_copy(dict(error)),
                progress=e.progress if progress is None else progress,
                current_node=e.current_node if current_node is None else current_node,
                started_at=e.started_at if started_at is None else started_at,
                finished_at=e.finished_at if finished_at is None else finished_at,
                usage=e.usage if usage is None else json_copy(dict(usage)),
                wake_at=e.wake_at if wake_at is None else wake_at,
                wait=e.wait if wait is None else json_copy(dict(wait)),
            )
            if release_lease:
                e = replace(e, lease_owner=None, lease_expires_at=None, current_node=None)
            if drop_checkpoint:
                self._s.checkpoints.pop(execution_id, None)
            self._s.executions[execution_id] = e
            add_outbox(self._s, account_id, outbox, execution_id=execution_id)
            if events:
                await self._append(account_id, execution_id, events)
                e = self._s.executions[execution_id]
            return e

    async def delete(
        self,
        account_id: str,
        execution_ids: Sequence[str],
        *,
        statuses: Collection[ExecutionStatus],
    ) -> builtins.list[str]:
        deleted = []
        async with self._s.lock:
            for execution_id in dict.fromkeys(execution_ids):
                e = self._s.executions.get(execution_id)
                if e is None or e.account_id != account_id or e.status not in statuses:
                    continue
                if has_pending_delivery(self._s, execution_id):
                    continue  # still to be sent: a later pass takes it
                del self._s.executions[execution_id]
                self._s.events.pop(execution_id, None)
                self._s.checkpoints.pop(execution_id, None)
                delete_run_deliveries(self._s, account_id, execution_id)
                deleted.append(execution_id)
        return deleted

    async def append_events(
        self, account_id: str, execution_id: str, events: Sequence[NewEvent]
    ) -> builtins.list[ExecutionEvent]:
        async with self._s.lock:
            return await self._append(account_id, execution_id, events)

    async def _append(
        self, account_id: str, execution_id: str, events: Sequence[NewEvent]
    ) -> builtins.list[ExecutionEvent]:
        e = await self.get(account_id, execution_id)
        now = self._s.clock()
        new = [
            ExecutionEvent(
                execution_id,
                account_id,
                e.last_event_seq + i,
                ev.type,
                json_copy(dict(ev.data)),
                ev.time or now,
            )
            for i, ev in enumerate(events, start=1)
        ]
        self._s.events.setdefault(execution_id, []).extend(new)
        self._s.executions[execution_id] = replace(e, last_event_seq=e.last_event_seq + len(new))
        return new

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
        async with self._s.lock:
            new = await self._append(account_id, execution_id, events)
            e = self._s.executions[execution_id]
            self._s.executions[execution_id] = replace(
                e,
                progress=e.progress if progress is None else progress,
                current_node=e.current_node if current_node is None else current_node,
                resume_attempts=0 if checkpoint is not None else e.resume_attempts,
            )
            add_outbox(self._s, account_id, outbox, execution_id=execution_id)
            if checkpoint is not None:
                self._s.checkpoints[execution_id] = Checkpoint(
                    execution_id,
                    account_id,
                    json_copy(checkpoint.shared),
                    checkpoint.next_node,
                    json_copy(dict(checkpoint.results)),
                    self._s.clock(),
                    json_copy(dict(checkpoint.resume)),
                )
            return new

    async def list_events(
        self,
        account_id: str,
        execution_id: str,
        *,
        after_seq: int = 0,
        limit: int = MAX_LIMIT,
    ) -> builtins.list[ExecutionEvent]:
        await self.get(account_id, execution_id)
        events = self._s.events.get(execution_id, [])
        # seq n sits at index n-1: the list is gap-free by construction.
        return events[max(after_seq, 0) : max(after_seq, 0) + clamp_limit(limit)]

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
        async with self._s.lock:
            await self.get(account_id, execution_id)
            checkpoint = Checkpoint(
                execution_id,
                account_id,
                json_copy(shared),
                next_node,
                json_copy(dict(results)),
                self._s.clock(),
                json_copy(dict(resume or {})),
            )
            self._s.checkpoints[execution_id] = checkpoint
            return checkpoint

    async def get_checkpoint(self, account_id: str, execution_id: str) -> Checkpoint | None:
        await self.get(account_id, execution_id)
        return self._s.checkpoints.get(execution_id)

    async def acquire_lease(
        self, account_id: str, execution_id: str, *, owner: str, ttl: timedelta
    ) -> Execution:
        async with self._s.lock:
            e = await self.get(account_id, execution_id)
            now = self._s.clock()
            if not _lease_free(e, now) and e.lease_owner != owner:
                raise Conflict("execution is leased", lease_owner=e.lease_owner)
            return self._set_lease(e, owner, now + ttl)

    async def renew_lease(
        self, account_id: str, execution_id: str, *, owner: str, ttl: timedelta
    ) -> Execution:
        async with self._s.lock:
            e = await self.get(account_id, execution_id)
            if e.lease_owner != owner:
                raise Conflict("lease is not held by this owner", lease_owner=e.lease_owner)
            return self._set_lease(e, owner, self._s.clock() + ttl)

    async def release_lease(self, account_id: str, execution_id: str, *, owner: str) -> None:
        async with self._s.lock:
            e = await self.get(account_id, execution_id)
            if e.lease_owner == owner:
                self._set_lease(e, None, None)

    async def admin_claim_expired_leases(
        self,
        *,
        owner: str,
        ttl: timedelta,
        limit: int = 100,
        unleased_after: timedelta | None = None,
    ) -> builtins.list[Execution]:
        async with self._s.lock:
            now = self._s.clock()
            born_before = now - (ttl if unleased_after is None else unleased_after)
            expired = sorted(
                (
                    e
                    for e in self._s.executions.values()
                    if e.status in ACTIVE_STATUSES
                    and e.detached  # a sub-flow's child is resumed by its parent
                    and (
                        e.lease_expires_at <= now
                        if e.lease_expires_at is not None
                        else e.created_at <= born_before
                    )
                ),
                key=lambda e: (e.lease_expires_at or e.created_at, e.id),
            )[: clamp_limit(limit)]
            return [
                self._set_lease(replace(e, resume_attempts=e.resume_attempts + 1), owner, now + ttl)
                for e in expired
            ]

    async def admin_claim_due_waits(
        self, *, owner: str, ttl: timedelta, limit: int = 100
    ) -> builtins.list[Execution]:
        async with self._s.lock:
            now = self._s.clock()
            due = sorted(
                (
                    e
                    for e in self._s.executions.values()
                    if e.status == "waiting" and e.wake_at is not None and e.wake_at <= now
                ),
                key=lambda e: (e.wake_at or now, e.id),
            )[: clamp_limit(limit)]
            return [
                self._set_lease(replace(e, status="running", wake_at=None), owner, now + ttl)
                for e in due
            ]

    def _set_lease(self, e: Execution, owner: str | None, until: datetime | None) -> Execution:
        e = replace(e, lease_owner=owner, lease_expires_at=until)
        self._s.executions[e.id] = e
        return e


def _lease_free(e: Execution, now: datetime) -> bool:
    return e.lease_owner is None or e.lease_expires_at is None or e.lease_expires_at <= now
