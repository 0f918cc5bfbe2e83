"""Webhook endpoints and the durable delivery outbox.

Items::

    ACCOUNT#<a> / WEBHOOK#<id>    an endpoint  gsi1: ACCOUNT#<a>#WEBHOOKS / created+id
    ACCOUNT#<a> / DELIVERY#<id>   a delivery   gsi1: ACCOUNT#<a>#DELIVERIES / created+id
                                               gsi2: ACCOUNT#<a>#WEBHOOK#<e>#DELIVERIES / same
                                               gsi3: OUTBOX / available_at+id (while pending)

``available_at`` is when a pending delivery may next be claimed: its ``next_attempt_at``, or
the end of the current claim. A worker claims a delivery with a conditional update
(pending, due, claim free or expired) on the delivery item itself, so two workers never hold
the same delivery; ``record_attempt`` is conditioned on the worker still holding the claim.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from flowrunner.errors import Conflict, NotFound
from flowrunner.storage.dynamodb.accounts import EXISTS, NEW, account_pk
from flowrunner.storage.dynamodb.client import ConditionFailed, Table, TransactionCanceled
from flowrunner.storage.dynamodb.codec import SEP, time_key, ts
from flowrunner.storage.dynamodb.expr import Expr
from flowrunner.storage.dynamodb.outbox import (
    claim_due,
    delivery_item,
    to_delivery,
    to_endpoint,
)
from flowrunner.storage.dynamodb.paging import query_page
from flowrunner.storage.protocols import DEFAULT_LIMIT
from flowrunner.storage.records import (
    Clock,
    DeliveryStatus,
    JSONValue,
    NewDelivery,
    Page,
    WebhookDelivery,
    WebhookEndpoint,
    delivery_status,
    new_id,
    pending_delivery,
)


class DynamoWebhooks:
    def __init__(self, table: Table, clock: Clock) -> None:
        self._t = table
        self._clock = clock

    async def create_endpoint(
        self,
        account_id: str,
        *,
        url: str,
        secret: str,
        events: Sequence[str] = (),
        enabled: bool = True,
        description: str = "",
    ) -> WebhookEndpoint:
        now = self._clock()
        endpoint_id = new_id()
        item = {
            "pk": account_pk(account_id), "sk": f"WEBHOOK#{endpoint_id}",
            "gsi1pk": f"ACCOUNT#{account_id}#WEBHOOKS", "gsi1sk": time_key(now, endpoint_id),
            "id": endpoint_id, "account_id": account_id, "url": url, "events": list(events),
            "secret": secret, "enabled": enabled, "description": description,
            "created_at": ts(now), "updated_at": ts(now),
        }  # fmt: skip
        await self._t.put(item, condition=NEW)
        return to_endpoint(item)

    async def get_endpoint(self, account_id: str, endpoint_id: str) -> WebhookEndpoint:
        fields = await self._t.get(account_pk(account_id), f"WEBHOOK#{endpoint_id}")
        if fields is None:
            raise NotFound("webhook endpoint not found", endpoint_id=endpoint_id)
        return to_endpoint(fields)

    async def list_endpoints(
        self,
        account_id: str,
        *,
        limit: int = DEFAULT_LIMIT,
        cursor: str | None = None,
        enabled: bool | None = None,
        event: str | None = None,
    ) -> Page[WebhookEndpoint]:
        def keep(w: WebhookEndpoint) -> bool:
            return (enabled is None or w.enabled == enabled) and (
                event is None or not w.events or event in w.events
            )

        return await query_page(
            self._t, index="gsi1", partition=f"ACCOUNT#{account_id}#WEBHOOKS",
            build=to_endpoint, limit=limit, cursor=cursor,
            keep=None if enabled is None and event is None else keep,
        )  # fmt: skip

    async def update_endpoint(
        self,
        account_id: str,
        endpoint_id: str,
        *,
        url: str | None = None,
        secret: str | None = None,
        events: Sequence[str] | None = None,
        enabled: bool | None = None,
        description: str | None = None,
    ) -> WebhookEndpoint:
        expr = Expr().set_fields(
            {
                "url": url, "secret": secret, "events": None if events is None else list(events),
                "enabled": enabled, "description": description,
                "updated_at": ts(self._clock()),
            }
        )  # fmt: skip
        try:
            fields = await self._t.update(
                account_pk(account_id), f"WEBHOOK#{endpoint_id}", expr, condition=EXISTS
            )
        except ConditionFailed:
            raise NotFound("webhook endpoint not found", endpoint_id=endpoint_id) from None
        return to_endpoint(fields)

    async def delete_endpoint(self, account_id: str, endpoint_id: str) -> None:
        """The endpoint goes first (so no new delivery can be enqueued for it), then its
        deliveries, found through their per-endpoint index partition."""
        try:
            await self._t.delete(account_pk(account_id), f"WEBHOOK#{endpoint_id}", condition=EXISTS)
        except ConditionFailed:
            raise NotFound("webhook endpoint not found", endpoint_id=endpoint_id) from None
        request: dict[str, Any] = {
            "IndexName": "gsi2",
            "KeyConditionExpression": "gsi2pk = :p",
            "ExpressionAttributeValues": {
                ":p": {"S": f"ACCOUNT#{account_id}#WEBHOOK#{endpoint_id}#DELIVERIES"}
            },
            "ProjectionExpression": "pk, sk",
        }
        while True:
            response = await self._t.query(**request)
            for raw in response.get("Items", []):
                await self._t.delete(raw["pk"]["S"], raw["sk"]["S"])
            if "LastEvaluatedKey" not in response:
                return
            request["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    async def enqueue(
        self,
        account_id: str,
        endpoint_id: str,
        *,
        event_type: str,
        payload: Mapping[str, JSONValue],
        not_before: datetime | None = None,
    ) -> WebhookDelivery:
        entry = NewDelivery(endpoint_id, event_type, payload)
        item = delivery_item(pending_delivery(account_id, entry, self._clock(), not_before))
        actions = [
            self._t.tx_check(account_pk(account_id), f"WEBHOOK#{endpoint_id}", EXISTS, Expr()),
            self._t.tx_put(item, NEW),
        ]
        try:
            await self._t.transact(actions)
        except TransactionCanceled as exc:
            raise NotFound("webhook endpoint not found", endpoint_id=endpoint_id) from exc
        return to_delivery(item)

    async def get_delivery(self, account_id: str, delivery_id: str) -> WebhookDelivery:
        fields = await self._t.get(account_pk(account_id), f"DELIVERY#{delivery_id}")
        if fields is None:
            raise NotFound("webhook delivery not found", delivery_id=delivery_id)
        return to_delivery(fields)

    async def list_deliveries(
        self,
        account_id: str,
        *,
        limit: int = DEFAULT_LIMIT,
        cursor: str | None = None,
        endpoint_id: str | None = None,
        status: DeliveryStatus | None = None,
    ) -> Page[WebhookDelivery]:
        index, partition = (
            ("gsi1", f"ACCOUNT#{account_id}#DELIVERIES")
            if endpoint_id is None
            else ("gsi2", f"ACCOUNT#{account_id}#WEBHOOK#{endpoint_id}#DELIVERIES")
        )
        return await query_page(
            self._t, index=index, partition=partition, build=to_delivery, limit=limit,
            cursor=cursor, keep=None if status is None else (lambda d: d.status == status),
        )  # fmt: skip

    async def admin_claim_due(
        self, *, worker: str, limit: int = 10, lease: timedelta = timedelta(seconds=60)
    ) -> builtins.list[WebhookDelivery]:
        return await claim_due(self._t, self._clock(), worker=worker, limit=limit, lease=lease)

    async def record_attempt(
        self,
        account_id: str,
        delivery_id: str,
        *,
        worker: str,
        delivered: bool,
        status_code: int | None = None,
        error: str | None = None,
        retry_at: datetime | None = None,
    ) -> WebhookDelivery:
        now = self._clock()
        status = delivery_status(delivered, retry_at)
        expr = Expr().set("status", status).set("last_status_code", status_code)
        expr.set("last_error", error).set("delivered_at", ts(now) if delivered else None)
        expr.set_expr("attempts", f"{expr.n('attempts')} + {expr.v(1)}")
        expr.remove("claimed_by", "claimed_until")
        if status == "pending" and retry_at is not None:
            expr.set("next_attempt_at", ts(retry_at))
            expr.set("gsi3sk", f"{ts(retry_at)}{SEP}{delivery_id}")
        else:
            expr.remove("gsi3pk", "gsi3sk")  # finished: out of the outbox queue
        condition = (
            f"{EXISTS} AND {expr.eq('claimed_by', worker)} AND {expr.eq('status', 'pending')}"
        )
        try:
            fields = await self._t.update(
                account_pk(account_id), f"DELIVERY#{delivery_id}", expr, condition=condition
            )
        except ConditionFailed:
            current = await self.get_delivery(account_id, delivery_id)  # NotFound if missing
            raise Conflict(
                "delivery is not claimed by this worker", claimed_by=current.claimed_by
            ) from None
        return to_delivery(fields)
