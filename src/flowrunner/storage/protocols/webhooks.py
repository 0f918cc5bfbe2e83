"""Webhook endpoints and the delivery outbox.

The rules every backend follows are in ``flowrunner.storage.protocols``.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Protocol

from flowrunner.storage.protocols.limits import DEFAULT_LIMIT
from flowrunner.storage.records import (
    DeliveryStatus,
    JSONValue,
    Page,
    WebhookDelivery,
    WebhookEndpoint,
)


class WebhookStore(Protocol):
    async def create_endpoint(
        self,
        account_id: str,
        *,
        url: str,
        secret: str,
        events: Sequence[str] = (),
        enabled: bool = True,
        description: str = "",
    ) -> WebhookEndpoint: ...

    async def get_endpoint(self, account_id: str, endpoint_id: str) -> WebhookEndpoint: ...

    async def list_endpoints(
        self,
        account_id: str,
        *,
        limit: int = DEFAULT_LIMIT,
        cursor: str | None = None,
        enabled: bool | None = None,
        event: str | None = None,
    ) -> Page[WebhookEndpoint]:
        """``event`` keeps endpoints subscribed to it (explicitly or by an empty list)."""
        ...

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
    ) -> WebhookEndpoint: ...

    async def delete_endpoint(self, account_id: str, endpoint_id: str) -> None:
        """Delete the endpoint and its deliveries."""
        ...

    async def enqueue(
        self,
        account_id: str,
        endpoint_id: str,
        *,
        event_type: str,
        payload: Mapping[str, JSONValue],
        not_before: datetime | None = None,
    ) -> WebhookDelivery:
        """Add a pending delivery to the outbox, due at ``not_before`` (default: now)."""
        ...

    async def get_delivery(self, account_id: str, delivery_id: str) -> WebhookDelivery: ...

    async def list_deliveries(
        self,
        account_id: str,
        *,
        limit: int = DEFAULT_LIMIT,
        cursor: str | None = None,
        endpoint_id: str | None = None,
        status: DeliveryStatus | None = None,
    ) -> Page[WebhookDelivery]: ...

    async def admin_claim_due(
        self, *, worker: str, limit: int = 10, lease: timedelta = timedelta(seconds=60)
    ) -> builtins.list[WebhookDelivery]:
        """Claim pending deliveries of any account that are due and not claimed (or whose
        claim expired) for ``lease``. Concurrent workers never get the same delivery."""
        ...

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
        """Finish a claimed attempt: count it, keep its outcome and release the claim.

        ``delivered`` → status delivered; else pending again at ``retry_at``, or dead when
        ``retry_at`` is None. ``Conflict`` if ``worker`` no longer holds the claim.
        """
        ...
