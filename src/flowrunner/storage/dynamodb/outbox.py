"""The webhook outbox queue: records of endpoint and delivery items, and claiming due work.

Claiming reads candidates from the sparse ``gsi3`` partition ``OUTBOX`` (pending deliveries
ordered by when they become available) and takes each with one conditional ``UpdateItem`` on
the delivery item: still pending, due, and not claimed (or the claim expired). A candidate
another worker took in between fails its condition and is skipped, so no delivery is handed to
two workers, even though the index itself is only eventually consistent.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from flowrunner.storage.dynamodb import due_queue
from flowrunner.storage.dynamodb.accounts import EXISTS, NEW, account_pk
from flowrunner.storage.dynamodb.client import ConditionFailed, Table
from flowrunner.storage.dynamodb.codec import (
    SEP,
    dump_json,
    load_json,
    opt_ts,
    parse_ts,
    time_key,
    ts,
)
from flowrunner.storage.dynamodb.expr import Expr
from flowrunner.storage.records import (
    NewDelivery,
    WebhookDelivery,
    WebhookEndpoint,
    pending_delivery,
)

OUTBOX = "OUTBOX"


def to_endpoint(f: dict[str, Any]) -> WebhookEndpoint:
    return WebhookEndpoint(
        f["id"], f["account_id"], f["url"], tuple(f["events"]), f["secret"], f["enabled"],
        parse_ts(f["created_at"]), parse_ts(f["updated_at"]), f.get("description", ""),
    )  # fmt: skip


def to_delivery(f: dict[str, Any]) -> WebhookDelivery:
    return WebhookDelivery(
        id=f["id"],
        account_id=f["account_id"],
        endpoint_id=f["endpoint_id"],
        event_type=f["event_type"],
        payload=load_json(f["payload"]),
        status=f["status"],
        attempts=f["attempts"],
        next_attempt_at=parse_ts(f["next_attempt_at"]),
        created_at=parse_ts(f["created_at"]),
        last_status_code=f.get("last_status_code"),
        last_error=f.get("last_error"),
        delivered_at=opt_ts(f.get("delivered_at")),
        claimed_by=f.get("claimed_by"),
        claimed_until=opt_ts(f.get("claimed_until")),
        execution_id=f.get("execution_id"),
    )


def delivery_item(d: WebhookDelivery) -> dict[str, Any]:
    """The item of a new (pending) delivery: in its account's and endpoint's listings and,
    through the sparse ``gsi3`` index, in the outbox queue ordered by when it is due."""
    a, e, i = d.account_id, d.endpoint_id, d.id
    return {
        "pk": f"ACCOUNT#{a}", "sk": f"DELIVERY#{i}",
        "gsi1pk": f"ACCOUNT#{a}#DELIVERIES", "gsi1sk": time_key(d.created_at, i),
        "gsi2pk": f"ACCOUNT#{a}#WEBHOOK#{e}#DELIVERIES", "gsi2sk": time_key(d.created_at, i),
        "gsi3pk": OUTBOX, "gsi3sk": f"{ts(d.next_attempt_at)}{SEP}{i}",
        "id": i, "account_id": a, "endpoint_id": e, "event_type": d.event_type,
        "payload": dump_json(dict(d.payload)), "status": "pending", "attempts": 0,
        "next_attempt_at": ts(d.next_attempt_at), "created_at": ts(d.created_at),
        "execution_id": d.execution_id,
    }  # fmt: skip


async def outbox_puts(
    table: Table, account_id: str, outbox: Sequence[NewDelivery], now: datetime
) -> list[dict[str, Any]]:
    """``TransactWriteItems`` puts of ``outbox``'s pending deliveries, for the caller to add to
    its own transaction. Entries whose endpoint is gone are left out (read first: a delete
    racing the write leaves an entry the dispatcher dead-letters, never a refused change)."""
    pk = account_pk(account_id)
    present: dict[str, bool] = {}
    actions: list[dict[str, Any]] = []
    for entry in outbox:
        if entry.endpoint_id not in present:
            present[entry.endpoint_id] = (
                await table.get(pk, f"WEBHOOK#{entry.endpoint_id}")
            ) is not None
        if present[entry.endpoint_id]:
            delivery = pending_delivery(account_id, entry, now)
            actions.append(table.tx_put(delivery_item(delivery), NEW))
    return actions


async def claim_due(
    table: Table, now: datetime, *, worker: str, limit: int, lease: timedelta
) -> list[WebhookDelivery]:
    return await due_queue.claim_due(
        table, OUTBOX, now, limit, lambda pk, sk: _claim(table, pk, sk, now, worker, lease)
    )


async def _claim(
    table: Table, pk: str, sk: str, now: datetime, worker: str, lease: timedelta
) -> WebhookDelivery | None:
    until = now + lease
    expr = Expr().set("claimed_by", worker).set("claimed_until", ts(until))
    expr.set("gsi3sk", f"{ts(until)}{SEP}{sk.removeprefix('DELIVERY#')}")
    condition = (
        f"{EXISTS} AND {expr.eq('status', 'pending')}"
        f" AND {expr.le('next_attempt_at', ts(now))}"
        f" AND ({expr.missing('claimed_until')} OR {expr.le('claimed_until', ts(now))})"
    )
    try:
        return to_delivery(await table.update(pk, sk, expr, condition=condition))
    except ConditionFailed:
        return None  # claimed, finished or rescheduled by someone else meanwhile
