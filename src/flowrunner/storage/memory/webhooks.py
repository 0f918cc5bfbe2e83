"""Webhook endpoints and the delivery outbox in memory."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from flowrunner.errors import Conflict, NotFound
from flowrunner.storage.memory.state import MemoryState, json_copy, page_by_time
from flowrunner.storage.pagination import clamp_limit
from flowrunner.storage.protocols import DEFAULT_LIMIT
from flowrunner.storage.records import (
    ATTEMPTS_NAMESPACE,
    FINISHED_DELIVERY,
    DeliveryStatus,
    JSONValue,
    NewDelivery,
    Page,
    WebhookDelivery,
    WebhookEndpoint,
    attempts_prefix,
    delivery_status,
    new_id,
    pending_delivery,
)


class MemoryWebhooks:
    def __init__(self, state: MemoryState) -> None:
        self._s = state

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
        async with self._s.lock:
            now = self._s.clock()
            endpoint = WebhookEndpoint(
                new_id(), account_id, url, tuple(events), secret, enabled, now, now, description
            )
            self._s.endpoints[endpoint.id] = endpoint
            return endpoint

    async def get_endpoint(self, account_id: str, endpoint_id: str) -> WebhookEndpoint:
        endpoint = self._s.endpoints.get(endpoint_id)
        if endpoint is None or endpoint.account_id != account_id:
            raise NotFound("webhook endpoint not found", endpoint_id=endpoint_id)
        return endpoint

    async def list_endpoints(
        self,
        account_id: str,
        *,
        limit: int = DEFAULT_LIMIT,
        cursor: str | None = None,
        enabled: bool | None = None,
        event: str | None = None,
    ) -> Page[WebhookEndpoint]:
        rows = [
            w
            for w in self._s.endpoints.values()
            if w.account_id == account_id
            and (enabled is None or w.enabled == enabled)
            and (event is None or not w.events or event in w.events)
        ]
        return page_by_time(rows, limit=limit, cursor=cursor, key=lambda w: (w.created_at, w.id))

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
        async with self._s.lock:
            w = await self.get_endpoint(account_id, endpoint_id)
            w = replace(
                w,
                url=w.url if url is None else url,
                secret=w.secret if secret is None else secret,
                events=w.events if events is None else tuple(events),
                enabled=w.enabled if enabled is None else enabled,
                description=w.description if description is None else description,
                updated_at=self._s.clock(),
            )
            self._s.endpoints[endpoint_id] = w
            return w

    async def delete_endpoint(self, account_id: str, endpoint_id: str) -> None:
        async with self._s.lock:
            await self.get_endpoint(account_id, endpoint_id)
            del self._s.endpoints[endpoint_id]
            for d in [d for d in self._s.deliveries.values() if d.endpoint_id == endpoint_id]:
                del self._s.deliveries[d.id]

    async def enqueue(
        self,
        account_id: str,
        endpoint_id: str,
        *,
        event_type: str,
        payload: Mapping[str, JSONValue],
        not_before: datetime | None = None,
    ) -> WebhookDelivery:
        async with self._s.lock:
            await self.get_endpoint(account_id, endpoint_id)
            entry = NewDelivery(endpoint_id, event_type, payload)
            delivery = new_delivery(account_id, entry, self._s.clock(), not_before)
            self._s.deliveries[delivery.id] = delivery
            return delivery

    async def get_delivery(self, account_id: str, delivery_id: str) -> WebhookDelivery:
        d = self._s.deliveries.get(delivery_id)
        if d is None or d.account_id != account_id:
            raise NotFound("webhook delivery not found", delivery_id=delivery_id)
        return d

    async def list_deliveries(
        self,
        account_id: str,
        *,
        limit: int = DEFAULT_LIMIT,
        cursor: str | None = None,
        endpoint_id: str | None = None,
        status: DeliveryStatus | None = None,
    ) -> Page[WebhookDelivery]:
        rows = [
            d
            for d in self._s.deliveries.values()
            if d.account_id == account_id
            and (endpoint_id is None or d.endpoint_id == endpoint_id)
            and (status is None or d.status == status)
        ]
        return page_by_time(rows, limit=limit, cursor=cursor, key=lambda d: (d.created_at, d.id))

    async def admin_claim_due(
        self, *, worker: str, limit: int = 10, lease: timedelta = timedelta(seconds=60)
    ) -> list[WebhookDelivery]:
        async with self._s.lock:
            now = self._s.clock()
            due = sorted(
                (
                    d
                    for d in self._s.deliveries.values()
                    if d.status == "pending"
                    and d.next_attempt_at <= now
                    and (d.claimed_until is None or d.claimed_until <= now)
                ),
                key=lambda d: (d.next_attempt_at, d.id),
            )[: clamp_limit(limit)]
            claimed = [replace(d, claimed_by=worker, claimed_until=now + lease) for d in due]
            self._s.deliveries.update((d.id, d) for d in claimed)
            return claimed

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
        async with self._s.lock:
            d = await self.get_delivery(account_id, delivery_id)
            if d.claimed_by != worker or d.status != "pending":
                raise Conflict("delivery is not claimed by this worker", claimed_by=d.claimed_by)
            now = self._s.clock()
            status = delivery_status(delivered, retry_at)
            d = replace(
                d,
                status=status,
                attempts=d.attempts + 1,
                last_status_code=status_code,
                last_error=error,
                delivered_at=now if delivered else None,
                next_attempt_at=retry_at if status == "pending" and retry_at else d.next_attempt_at,
                claimed_by=None,
                claimed_until=None,
            )
            self._s.deliveries[delivery_id] = d
            return d


def new_delivery(
    account_id: str,
    entry: NewDelivery,
    now: datetime,
    not_before: datetime | None = None,
    *,
    execution_id: str | None = None,
) -> WebhookDelivery:
    delivery = pending_delivery(account_id, entry, now, not_before, execution_id=execution_id)
    return replace(delivery, payload=json_copy(dict(entry.payload)))


def add_outbox(
    state: MemoryState,
    account_id: str,
    outbox: Sequence[NewDelivery],
    *,
    execution_id: str | None = None,
) -> None:
    """Pending deliveries (of the run ``execution_id``, if a run's change wrote them) for
    ``outbox``, under the caller's lock; entries whose endpoint was deleted meanwhile are
    dropped."""
    for entry in outbox:
        if entry.endpoint_id in state.endpoints:
            delivery = new_delivery(account_id, entry, state.clock(), execution_id=execution_id)
            state.deliveries[delivery.id] = delivery


def has_pending_delivery(state: MemoryState, execution_id: str) -> bool:
    """Whether the run has a delivery still to send (retention leaves it for later)."""
    return any(
        d.execution_id == execution_id and d.status == "pending" for d in state.deliveries.values()
    )


def delete_run_deliveries(state: MemoryState, account_id: str, execution_id: str) -> None:
    """Delete the run's finished deliveries with their attempts' detail, under the caller's
    lock."""
    for d in list(state.deliveries.values()):
        if (
            d.account_id == account_id
            and d.execution_id == execution_id
            and d.status in FINISHED_DELIVERY
        ):
            del state.deliveries[d.id]
            prefix = attempts_prefix(d.id)
            for key in [
                k
                for k in state.kv
                if k[:2] == (account_id, ATTEMPTS_NAMESPACE) and k[2].startswith(prefix)
            ]:
                del state.kv[key]
