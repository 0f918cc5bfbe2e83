"""What the API does with webhooks: endpoints (create, list, get, update, delete, rotate the
secret, send a test event), their deliveries with every attempt, and manual redelivery.

A secret is shown once, in the answer that creates or rotates it; listings show none, and
header values are masked (they often carry a token). Every change is audited.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from flowrunner.audit import AuditLog, actions
from flowrunner.errors import InvalidInput
from flowrunner.secrets import MASK, Keyring
from flowrunner.storage import (
    Account,
    Page,
    Store,
    WebhookDelivery,
    WebhookEndpoint,
)
from flowrunner.storage.records import DeliveryStatus, utcnow
from flowrunner.webhooks import attempts
from flowrunner.webhooks.events import EVENT_TYPES, envelope
from flowrunner.webhooks.runtime import WebhookRuntime
from flowrunner.webhooks.secretbox import EndpointConfig, seal, unseal
from flowrunner.webhooks.signing import check_secret, new_secret
from flowrunner.webhooks.subscriptions import FLOW_PREFIX

MAX_ENDPOINTS_PER_ACCOUNT = 100
MAX_HEADERS = 20
MAX_REDELIVER = 1000
_RESERVED_HEADERS = {"content-type", "user-agent", "webhook-id", "webhook-timestamp",
                     "webhook-signature", "host", "content-length"}  # fmt: skip


@dataclass(frozen=True, slots=True)
class EndpointView:
    endpoint: WebhookEndpoint
    config: EndpointConfig
    secret: str | None = None
    """Only in the answer that creates or rotates the secret."""

    @property
    def source(self) -> str:
        return "flow" if self.endpoint.description.startswith(FLOW_PREFIX) else "api"

    def as_json(self) -> dict[str, Any]:
        e, c = self.endpoint, self.config
        out: dict[str, Any] = {
            "id": e.id,
            "url": e.url,
            "events": list(e.events),
            "description": e.description,
            "enabled": e.enabled,
            "source": self.source,
            "flow_ids": list(c.flow_ids),
            "headers": {k: MASK for k in c.headers},
            "secret_rotating_until": c.previous_until.isoformat() if c.previous_until else None,
            "created_at": e.created_at.isoformat(),
            "updated_at": e.updated_at.isoformat(),
        }
        if self.secret is not None:
            out["secret"] = self.secret
        return out


@dataclass(frozen=True, slots=True)
class DeliveryView:
    delivery: WebhookDelivery
    attempts: list[dict[str, Any]] = field(default_factory=list)


class WebhookService:
    def __init__(
        self, store: Store, keyring: Keyring, runtime: WebhookRuntime, audit: AuditLog
    ) -> None:
        self._store = store
        self._keyring = keyring
        self._runtime = runtime
        self._audit = audit

    # --- endpoints -------------------------------------------------------------------------

    async def create(
        self,
        account: Account,
        *,
        url: str,
        events: Sequence[str] = (),
        description: str = "",
        secret: str | None = None,
        headers: Mapping[str, str] | None = None,
        flow_ids: Sequence[str] = (),
    ) -> EndpointView:
        self._check_url(url)
        _check_events(events)
        if description.startswith(FLOW_PREFIX):
            raise InvalidInput(f"description: may not start with {FLOW_PREFIX!r}")
        count = await self._store.webhooks.list_endpoints(
            account.id, limit=MAX_ENDPOINTS_PER_ACCOUNT
        )
        if len(count.items) >= MAX_ENDPOINTS_PER_ACCOUNT:
            raise InvalidInput(f"an account has at most {MAX_ENDPOINTS_PER_ACCOUNT} endpoints")
        plain = _secret(secret) if secret is not None else new_secret()
        config = EndpointConfig(current=plain, headers=_headers(headers), flow_ids=tuple(flow_ids))
        endpoint = await self._store.webhooks.create_endpoint(
            account.id, url=url, secret=seal(self._keyring, config), events=list(events),
            description=description,
        )  # fmt: skip
        self._changed(account.id)
        await self._record(actions.WEBHOOK_CREATED, account, endpoint.id, {"url": url})
        return EndpointView(endpoint, config, secret=plain)

    async def list(self, account: Account, *, limit: int, cursor: str | None) -> Page[EndpointView]:
        page = await self._store.webhooks.list_endpoints(account.id, limit=limit, cursor=cursor)
        views = [EndpointView(e, unseal(self._keyring, e.secret)) for e in page.items]
        return Page(views, page.next_cursor)

    async def get(self, account: Account, endpoint_id: str) -> EndpointView:
        endpoint = await self._store.webhooks.get_endpoint(account.id, endpoint_id)
        return EndpointView(endpoint, unseal(self._keyring, endpoint.secret))

    async def update(
        self,
        account: Account,
        endpoint_id: str,
        *,
        url: str | None = None,
        events: Sequence[str] | None = None,
        enabled: bool | None = None,
        description: str | None = None,
        headers: Mapping[str, str] | None = None,
        flow_ids: Sequence[str] | None = None,
    ) -> EndpointView:
        current = await self.get(account, endpoint_id)
        if url is not None:
            self._check_url(url)
        if events is not None:
            _check_events(events)
        config = current.config
        if headers is not None:
            config = replace(config, headers=_headers(headers))
        if flow_ids is not None:
            config = replace(config, flow_ids=tuple(flow_ids))
        endpoint = await self._store.webhooks.update_endpoint(
            account.id, endpoint_id, url=url, events=events, enabled=enabled,
            description=description,
            secret=seal(self._keyring, config) if config is not current.config else None,
        )  # fmt: skip
        self._changed(account.id, endpoint_id)
        await self._record(actions.WEBHOOK_UPDATED, account, endpoint_id, {})
        return EndpointView(endpoint, config)

    async def delete(self, account: Account, endpoint_id: str) -> None:
        await self._store.webhooks.delete_endpoint(account.id, endpoint_id)
        self._changed(account.id, endpoint_id)
        await self._record(actions.WEBHOOK_DELETED, account, endpoint_id, {})

    async def rotate_secret(
        self, account: Account, endpoint_id: str, *, secret: str | None = None
    ) -> EndpointView:
        """A new secret; the old one keeps signing beside it for the grace period."""
        current = await self.get(account, endpoint_id)
        plain = _secret(secret) if secret is not None else new_secret()
        until = utcnow() + self._runtime.rotation_grace
        config = current.config.rotated(plain, until)
        endpoint = await self._store.webhooks.update_endpoint(
            account.id, endpoint_id, secret=seal(self._keyring, config)
        )
        self._changed(account.id, endpoint_id)
        await self._record(
            actions.WEBHOOK_SECRET_ROTATED, account, endpoint_id, {"grace_until": until.isoformat()}
        )
        return EndpointView(endpoint, config, secret=plain)

    async def send_test(self, account: Account, endpoint_id: str) -> WebhookDelivery:
        """A ``webhook.test`` event through the outbox, like any other (recorded, retried)."""
        await self.get(account, endpoint_id)
        payload = envelope("webhook.test", utcnow(), {"endpoint_id": endpoint_id})
        delivery = await self._store.webhooks.enqueue(
            account.id, endpoint_id, event_type="webhook.test", payload=payload
        )
        self._runtime.dispatcher.wake()
        return delivery

    # --- deliveries ------------------------------------------------------------------------

    async def deliveries(
        self,
        account: Account,
        *,
        endpoint_id: str | None,
        status: DeliveryStatus | None,
        limit: int,
        cursor: str | None,
    ) -> Page[WebhookDelivery]:
        if endpoint_id is not None:
            await self.get(account, endpoint_id)
        return await self._store.webhooks.list_deliveries(
            account.id, endpoint_id=endpoint_id, status=status, limit=limit, cursor=cursor
        )

    async def delivery(self, account: Account, delivery_id: str) -> DeliveryView:
        delivery = await self._store.webhooks.get_delivery(account.id, delivery_id)
        tried = await attempts.history(self._store.kv, account.id, delivery_id)
        return DeliveryView(delivery, tried)

    async def redeliver(self, account: Account, delivery_id: str) -> WebhookDelivery:
        """Send a delivery's event again, as a new delivery (a new ``webhook-id``)."""
        original = await self._store.webhooks.get_delivery(account.id, delivery_id)
        again = await self._store.webhooks.enqueue(
            account.id, original.endpoint_id, event_type=original.event_type,
            payload=original.payload,
        )  # fmt: skip
        self._runtime.dispatcher.wake()
        return again

    async def redeliver_failed(
        self, account: Account, endpoint_id: str, *, since: datetime
    ) -> builtins.list[WebhookDelivery]:
        """Every dead-lettered delivery of the endpoint created at or after ``since``, sent
        again (at most ``MAX_REDELIVER`` per call; call again for the rest)."""
        await self.get(account, endpoint_id)
        found: builtins.list[WebhookDelivery] = []
        cursor: str | None = None
        while len(found) < MAX_REDELIVER:
            page = await self._store.webhooks.list_deliveries(
                account.id, endpoint_id=endpoint_id, status="dead", cursor=cursor
            )
            fresh = [d for d in page.items if d.created_at >= since]
            found += fresh
            cursor = page.next_cursor
            if cursor is None or len(fresh) < len(page.items):  # newest first: older follow
                break
        again = [
            await self._store.webhooks.enqueue(
                account.id, d.endpoint_id, event_type=d.event_type, payload=d.payload
            )
            for d in found[:MAX_REDELIVER]
        ]
        self._runtime.dispatcher.wake()
        return again

    # --- helpers ---------------------------------------------------------------------------

    def _check_url(self, url: str) -> None:
        if len(url) > 2048:
            raise InvalidInput("url: at most 2048 characters")
        self._runtime.policy.check_url(url)  # DestinationRefused → 400 naming why

    def _changed(self, account_id: str, endpoint_id: str | None = None) -> None:
        self._runtime.subscriptions.invalidate(account_id)
        if endpoint_id is not None:
            self._runtime.dispatcher.forget(endpoint_id)

    async def _record(
        self, action: str, account: Account, endpoint_id: str, details: dict[str, Any]
    ) -> None:
        await self._audit.record(
            action, account_id=account.id, actor_id=account.id, target=endpoint_id,
            details=details,
        )  # fmt: skip


def _check_events(events: Sequence[str]) -> None:
    unknown = [e for e in events if e not in EVENT_TYPES]
    if unknown:
        raise InvalidInput(
            f"events: unknown event type {unknown[0]!r}; known: {', '.join(EVENT_TYPES)}"
        )


def _secret(secret: str) -> str:
    try:
        return check_secret(secret)
    except ValueError as exc:
        raise InvalidInput(f"secret: {exc}") from None


def _headers(headers: Mapping[str, str] | None) -> dict[str, str]:
    given = dict(headers or {})
    if len(given) > MAX_HEADERS:
        raise InvalidInput(f"headers: at most {MAX_HEADERS}")
    for name in given:
        if name.lower() in _RESERVED_HEADERS:
            raise InvalidInput(f"headers: {name!r} is set by the dispatcher")
    return given
