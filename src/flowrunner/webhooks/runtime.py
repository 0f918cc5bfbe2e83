"""The webhook machinery of one server process, built from settings: the subscriptions cache,
the outbox the runner writes to, and the dispatcher (started and stopped with the server)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta

from flowrunner.audit import AuditLog
from flowrunner.config import Settings
from flowrunner.outbound import AddressPolicy
from flowrunner.secrets import Keyring
from flowrunner.storage import Store
from flowrunner.webhooks.dispatcher import Dispatcher, DispatchSettings, SecretsResolver
from flowrunner.webhooks.outbox import EventOutbox
from flowrunner.webhooks.retries import RetrySchedule, parse_schedule
from flowrunner.webhooks.subscriptions import Subscriptions


@dataclass(frozen=True, slots=True)
class WebhookRuntime:
    subscriptions: Subscriptions
    outbox: EventOutbox
    dispatcher: Dispatcher
    policy: AddressPolicy
    rotation_grace: timedelta


def dispatch_settings(settings: Settings) -> DispatchSettings:
    return DispatchSettings(
        schedule=RetrySchedule(parse_schedule(settings.webhook_retry_schedule)),
        timeout=settings.webhook_timeout_seconds,
        per_endpoint=settings.webhook_concurrency_per_endpoint,
        max_in_flight=settings.webhook_max_in_flight,
        rate_per_second=settings.webhook_rate_per_second,
        poll_seconds=settings.webhook_poll_seconds,
        lease=timedelta(seconds=max(60.0, settings.webhook_timeout_seconds * 3)),
        disable_after=timedelta(seconds=settings.webhook_disable_after_seconds),
    )


@asynccontextmanager
async def webhook_runtime(
    settings: Settings,
    store: Store,
    keyring: Keyring,
    *,
    worker: str,
    secrets: SecretsResolver | None = None,
    audit: AuditLog | None = None,
    observe: Callable[[str], None] | None = None,
) -> AsyncIterator[WebhookRuntime]:
    policy = AddressPolicy.from_settings(settings.http_allow_private, settings.http_allow)
    subscriptions = Subscriptions(store, keyring, policy)
    dispatcher = Dispatcher(
        store, keyring, policy, dispatch_settings(settings),
        worker=worker, secrets=secrets, audit=audit, observe=observe,
    )  # fmt: skip
    outbox = EventOutbox(subscriptions, wake=dispatcher.wake)
    dispatcher.start()
    try:
        yield WebhookRuntime(
            subscriptions,
            outbox,
            dispatcher,
            policy,
            timedelta(seconds=settings.webhook_rotation_grace_seconds),
        )
    finally:
        await dispatcher.stop()
