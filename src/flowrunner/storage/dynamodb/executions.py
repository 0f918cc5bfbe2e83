"""Executions: create (with idempotency keys), read, list, and compare-and-set updates.

Events and checkpoints live in ``events``, leases in ``leases``; ``DynamoExecutions`` is the
whole ``ExecutionStore``. Item layout: see ``execution_items``.
"""

from __future__ import annotations

import asyncio
import builtins
import random
from collections.abc import Collection, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from flowrunner.errors import Conflict, NotFound
from flowrunner.storage.dynamodb.accounts import EXISTS, NEW, account_pk
from flowrunner.storage.dynamodb.client import ConditionFailed, TransactionCanceled
from flowrunner.storage.dynamodb.codec import dump_json, time_key, ts
from flowrunner.storage.dynamodb.events import (
    APPEND_ATTEMPTS,
    EventLog,
    batch_item,
    batches_of,
)
from flowrunner.storage.dynamodb.execution_items import (
    LEASE_QUEUE,
    WAIT_QUEUE,
    exec_sk,
    lease_key,
    run_pk,
    to_execution,
)
from flowrunner.storage.dynamodb.expr import Expr
from flowrunner.storage.dynamodb.flows import time_range
from flowrunner.storage.dynamodb.leases import Leases
from flowrunner.storage.dynamodb.outbox import delivery_item, outbox_puts
from flowrunner.storage.dynamodb.paging import query_page
from flowrunner.storage.dynamodb.run_deliveries import (
    any_pending,
    delete_finished,
    link_item,
    run_deliveries,
)
from flowrunner.storage.protocols import DEFAULT_LIMIT
from flowrunner.storage.records import (
    ACTIVE_STATUSES,
    Execution,
    ExecutionStatus,
    JSONValue,
    NewDelivery,
    NewEvent,
    Page,
    leased,
    new_id,
    no_version_to_pin,
    pending_delivery,
)


class DynamoExecutions(EventLog, Leases):
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
        if flow_version is None:  # a read first: a put cannot take a value from another item
            flow = await self._t.get(account_pk(account_id), f"FLOW#{flow_id}")
            if flow is None or "deleted_at" in flow or not flow.get("current_version"):
                raise no_version_to_pin(account_id, flow_id)
            flow_version = int(flow["current_version"])
        now = self._clock()
        execution_id = new_id()
        lease = leased(lease_owner, lease_ttl, now)
        until = lease.get("lease_expires_at")
        item = {
            "pk": account_pk(account_id), "sk": exec_sk(execution_id),
            "gsi1pk": f"ACCOUNT#{account_id}#EXECS", "gsi1sk": time_key(now, execution_id),
            "gsi2pk": f"ACCOUNT#{account_id}#FLOW#{flow_id}#EXECS",
            "gsi2sk": time_key(now, execution_id),
            "gsi3pk": LEASE_QUEUE if status in ACTIVE_STATUSES else None,
            # Due for recovery from its creation until leased (if never leased, after a grace).
            # (A leased one, when its lease expires.)
            "gsi3sk": (
                lease_key(until or now, execution_id) if status in ACTIVE_STATUSES else None
            ),
            "id": execution_id, "account_id": account_id, "flow_id": flow_id,
            "flow_version": flow_version, "status": status, "input": dump_json(input),
            "created_at": ts(now), "idempotency_key": idempotency_key, "last_event_seq": 0,
            "parent_id": parent_id, "lease_owner": lease_owner,
            "lease_expires_at": ts(until) if until is not None else None,
        }  # fmt: skip
        if idempotency_key is None:
            await self._t.put(item, condition=NEW)
        else:
            guard = {
                "pk": account_pk(account_id), "sk": f"IDEMPOTENCY#{idempotency_key}",
                "execution_id": execution_id,
            }  # fmt: skip
            try:
                await self._t.transact([self._t.tx_put(item, NEW), self._t.tx_put(guard, NEW)])
            except TransactionCanceled as exc:
                raise Conflict(
                    "idempotency key already used", idempotency_key=idempotency_key
                ) from exc
        return to_execution(item)

    async def get_by_idempotency_key(self, account_id: str, key: str) -> Execution:
        guard = await self._t.get(account_pk(account_id), f"IDEMPOTENCY#{key}")
        if guard is None:
            raise NotFound("execution not found", account_id=account_id, idempotency_key=key)
        return await self.get(account_id, guard["execution_id"])

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
        wanted = set(status)

        def keep(e: Execution) -> bool:
            return (not wanted or e.status in wanted) and (
                parent_id is None or e.parent_id == parent_id
            )

        # A flow's executions have their own index partition, so filtering by flow reads
        # only that flow's runs; status is filtered on the way.
        index, partition = (
            ("gsi1", f"ACCOUNT#{account_id}#EXECS")
            if flow_id is None
            else ("gsi2", f"ACCOUNT#{account_id}#FLOW#{flow_id}#EXECS")
        )
        return await query_page(
            self._t, index=index, partition=partition, build=to_execution, limit=limit,
            cursor=cursor, sort=time_range(created_after, created_before),
            keep=keep if wanted or parent_id is not None else None,
        )  # fmt: skip

    async def delete(
        self,
        account_id: str,
        execution_ids: Sequence[str],
        *,
        statuses: Collection[ExecutionStatus],
    ) -> builtins.list[str]:
        deleted = []
        pk = account_pk(account_id)
        for execution_id in dict.fromkeys(execution_ids):
            expr = Expr()
            condition = f"{EXISTS} AND {expr.is_in('status', list(statuses))}"
            deliveries = await run_deliveries(self._t, account_id, execution_id)
            if any_pending(deliveries):
                continue  # still to be sent: a later pass takes the run
            try:
                # The execution item first, on its status: once it is gone the run is gone
                # for every reader; its events and checkpoint are then only unreachable
                # items, deleted next (a crash between leaves them for no one to see), and
                # its finished deliveries with their attempts.
                old = await self._t.delete(
                    pk, exec_sk(execution_id), condition=condition, expr=expr
                )
            except ConditionFailed:
                continue
            if old is None:
                continue
            key = old.get("idempotency_key")
            if key is not None:
                await self._t.delete(pk, f"IDEMPOTENCY#{key}")
            await delete_finished(self._t, account_id, deliveries)
            await self._delete_partition(run_pk(account_id, execution_id))
            deleted.append(execution_id)
        return deleted

    async def _delete_partition(self, partition: str) -> None:
        start: dict[str, Any] | None = None
        while True:
            request: dict[str, Any] = {
                "KeyConditionExpression": "pk = :pk",
                "ExpressionAttributeValues": {":pk": {"S": partition}},
                "ProjectionExpression": "pk, sk",
                "ConsistentRead": True,
            }
            if start is not None:
                request["ExclusiveStartKey"] = start
            page = await self._t.query(**request)
            for item in page.get("Items", []):
                await self._t.delete(item["pk"]["S"], item["sk"]["S"])
            start = page.get("LastEvaluatedKey")
            if start is None:
                return

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
        expr = Expr().set_fields(
            {
                "wake_at": None if wake_at is None else ts(wake_at),
                "wait": None if wait is None else dump_json(dict(wait)),
                "status": status,
                "output": None if output is None else dump_json(output),
                "error": None if error is None else dump_json(dict(error)),
                "progress": None if progress is None else float(progress),
                "current_node": current_node,
                "started_at": None if started_at is None else ts(started_at),
                "finished_at": None if finished_at is None else ts(finished_at),
                "usage": None if usage is None else dump_json(dict(usage)),
            }
        )
        queued_wake = status == "waiting" and wake_at is not None
        if status is not None:
            # Only active executions sit in the crash-recovery queue; a waiting one with a
            # wake time sits in the waker's, at that time.
            if status in ACTIVE_STATUSES:
                expr.set("gsi3pk", LEASE_QUEUE)
                if "waiting" in expected_status and not release_lease:
                    # Leaving a wait unleased (a signal): due for recovery now, should the
                    # process that resumes it die before it takes the lease.
                    expr.set("gsi3sk", lease_key(self._clock(), execution_id))
            elif queued_wake:
                expr.set("gsi3pk", WAIT_QUEUE).set("gsi3sk", lease_key(wake_at, execution_id))
            else:
                expr.remove("gsi3pk")
            if status != "waiting":
                expr.remove("wake_at")
        if release_lease:  # the lease's expiry is its place in the queue
            expr.remove("lease_owner", "lease_expires_at", "current_node")
            if not queued_wake:
                expr.remove("gsi3sk")
        if events:
            updated = await self._set_with_events(
                account_id, execution_id, expr, expected_status, outbox, expected_seq, events
            )
        elif expr.update:
            updated = await self._set(
                account_id, execution_id, expr, expected_status, outbox, expected_seq
            )
        else:
            updated = await self.get(account_id, execution_id)
            if (expected_status and updated.status not in expected_status) or (
                expected_seq is not None and updated.last_event_seq != expected_seq
            ):
                raise Conflict(f"execution is {updated.status}", execution_id=execution_id)
        if drop_checkpoint:
            # A separate write: a crash in between leaves a checkpoint nobody reads (the run
            # has ended), not a wrong status.
            await self._t.delete(run_pk(account_id, execution_id), "CHECKPOINT")
        return updated

    async def _set(
        self,
        account_id: str,
        execution_id: str,
        expr: Expr,
        expected_status: Collection[ExecutionStatus],
        outbox: Sequence[NewDelivery] = (),
        expected_seq: int | None = None,
    ) -> Execution:
        """The conditional update, with ``outbox`` in the same transaction (if any)."""
        condition = _condition(expr, expected_status, expected_seq)
        try:
            if outbox:
                fields = await self._update_with_outbox(
                    account_id, execution_id, expr, condition, outbox
                )
            else:
                fields = await self._t.update(
                    account_pk(account_id), exec_sk(execution_id), expr, condition=condition
                )
        except (ConditionFailed, TransactionCanceled):
            current = await self.get(account_id, execution_id)  # NotFound if it is missing
            raise Conflict(
                f"execution is {current.status}", execution_id=execution_id, status=current.status
            ) from None
        return to_execution(fields)

    async def _set_with_events(
        self,
        account_id: str,
        execution_id: str,
        expr: Expr,
        expected_status: Collection[ExecutionStatus],
        outbox: Sequence[NewDelivery],
        expected_seq: int | None,
        events: Sequence[NewEvent],
    ) -> Execution:
        """The conditional update, the batch of ``events`` at the next free number (the
        update sets the event counter to its last) and the ``outbox`` entries: one
        ``TransactWriteItems``, retried at the next number after a lost race for it, as
        ``_append`` is. Events past one batch (99, ~350 KB) have their earlier batches
        appended first, as ``record_step`` does: the last batch, which holds the final event,
        still goes with the status. The returned record's ``last_event_seq`` is that batch's
        last number (the counter only lags the batches, it never runs ahead of them)."""
        pk, sk, key = account_pk(account_id), exec_sk(execution_id), (account_id, execution_id)
        condition = _condition(expr, expected_status, expected_seq)
        last_seq = expr.v(0)  # set for each attempt below
        expr.set_expr("last_event_seq", last_seq)
        batches = batches_of(events)
        async with self._appending.hold(key):
            for batch in batches[:-1]:
                await self._append(account_id, execution_id, batch)
            now = self._clock()
            deliveries = await outbox_puts(self._t, account_id, outbox, now)
            hint = self._next_hint.pop(key, None)
            for attempt in range(APPEND_ATTEMPTS):
                first = hint or await self._next_seq(account_id, execution_id)
                hint = None
                expr.values[last_seq] = last = first + len(batches[-1]) - 1
                item = batch_item(account_id, execution_id, first, batches[-1], now)
                actions = [
                    self._t.tx_update(pk, sk, expr, condition),
                    self._t.tx_put(item, NEW),
                    *deliveries,
                ]
                try:
                    await self._t.transact(actions)
                except TransactionCanceled as exc:
                    if exc.failed(0):  # the status (or seq) moved on: a racing transition won
                        current = await self.get(account_id, execution_id)  # or NotFound
                        raise Conflict(
                            f"execution is {current.status}",
                            execution_id=execution_id,
                            status=current.status,
                        ) from None
                    # Another writer took this number first: back off a little and re-read.
                    await asyncio.sleep(random.uniform(0, min(0.05, 0.001 * 2 ** min(attempt, 6))))
                    continue
                self._remember(account_id, execution_id, last + 1)
                fields = await self._t.get(pk, sk)
                if fields is None:
                    raise NotFound("execution not found", execution_id=execution_id)
                # A later append may have raised the counter already: these events end here.
                return replace(to_execution(fields), last_event_seq=last)
        raise Conflict("too many concurrent event writers; retry", execution_id=execution_id)

    async def _update_with_outbox(
        self,
        account_id: str,
        execution_id: str,
        expr: Expr,
        condition: str,
        outbox: Sequence[NewDelivery],
    ) -> dict[str, Any]:
        """The update and its outbox entries in one ``TransactWriteItems``. Entries whose
        endpoint is gone are left out (read first: a delete racing this write leaves an entry
        the dispatcher dead-letters, never a refused status change)."""
        pk = account_pk(account_id)
        now = self._clock()
        actions = [self._t.tx_update(pk, exec_sk(execution_id), expr, condition)]
        present: dict[str, bool] = {}
        written = []
        for entry in outbox:
            if entry.endpoint_id not in present:
                found = await self._t.get(pk, f"WEBHOOK#{entry.endpoint_id}")
                present[entry.endpoint_id] = found is not None
            if present[entry.endpoint_id]:
                delivery = pending_delivery(account_id, entry, now, execution_id=execution_id)
                actions.append(self._t.tx_put(delivery_item(delivery), NEW))
                written.append(delivery.id)
        if written:
            actions.append(self._t.tx_put(link_item(account_id, execution_id, written)))
        await self._t.transact(actions)
        fields = await self._t.get(pk, exec_sk(execution_id))
        if fields is None:
            raise NotFound("execution not found", execution_id=execution_id)
        return fields


def _condition(
    expr: Expr, expected_status: Collection[ExecutionStatus], expected_seq: int | None
) -> str:
    """The update's condition: the execution exists, in one of ``expected_status`` (if any),
    its last event numbered ``expected_seq`` (if given)."""
    condition = EXISTS
    if expected_status:
        condition += f" AND {expr.is_in('status', list(expected_status))}"
    if expected_seq is not None:
        condition += f" AND {expr.eq('last_event_seq', expected_seq)}"
    return condition
