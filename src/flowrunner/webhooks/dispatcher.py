"""The dispatcher: claims due deliveries from the outbox with a lease, signs, sends, records.

Several server processes can run one each: ``admin_claim_due`` hands a delivery to one worker
at a time, for ``lease``; a worker that dies mid-send loses its claim when the lease expires
and the delivery is sent again by whoever claims it next. Delivery is therefore
at-least-once: a receiver may see a message twice (same ``webhook-id``) and should dedupe.

A send is bounded on every side: the endpoint's concurrency slots, the process's rate limit
and in-flight cap, the request timeout, and the response bytes read (a snippet is kept).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import httpx

from flowrunner import __version__, jsontext
from flowrunner.audit import AuditLog, actions
from flowrunner.errors import Conflict, DestinationRefused, NotFound, VaultError, WebhookError
from flowrunner.outbound import AddressPolicy, guarded_client
from flowrunner.secrets import Keyring
from flowrunner.storage import Store, WebhookDelivery, WebhookEndpoint
from flowrunner.storage.records import utcnow
from flowrunner.webhooks import attempts
from flowrunner.webhooks.events import envelope
from flowrunner.webhooks.limits import EndpointSlots, RateLimiter
from flowrunner.webhooks.retries import RetrySchedule, is_retryable, retry_after_seconds
from flowrunner.webhooks.secretbox import EndpointConfig, unseal
from flowrunner.webhooks.signing import signature_headers

log = logging.getLogger(__name__)

HEALTH = "webhook-health"
RESPONSE_BYTES = 4096
CLAIM_BATCH = 50
ENDPOINT_CACHE_SECONDS = 2.0
MAX_CACHED_ENDPOINTS = 10_000

SecretsResolver = Callable[[str], Awaitable[Mapping[str, Any]]]


@dataclass(frozen=True, slots=True)
class DispatchSettings:
    schedule: RetrySchedule
    timeout: float = 10.0
    per_endpoint: int = 4
    max_in_flight: int = 64
    rate_per_second: float = 200.0
    poll_seconds: float = 1.0
    lease: timedelta = timedelta(seconds=60)
    disable_after: timedelta = timedelta(days=5)


@dataclass(frozen=True, slots=True)
class Outcome:
    status_code: int | None
    response: str
    error: str | None
    retry_after: float | None
    latency_ms: float
    refused: bool = False
    """The SSRF guard refused the destination: retrying cannot help."""

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class Dispatcher:
    def __init__(
        self,
        store: Store,
        keyring: Keyring,
        policy: AddressPolicy,
        settings: DispatchSettings,
        *,
        worker: str,
        secrets: SecretsResolver | None = None,
        audit: AuditLog | None = None,
        clock: Callable[[], datetime] = utcnow,
        observe: Callable[[str], None] | None = None,
    ) -> None:
        self._store = store
        # Told each recorded attempt's outcome: delivered, retrying or gave_up (metrics).
        self._observe = observe
        self._keyring = keyring
        self._policy = policy
        self._settings = settings
        self._worker = worker
        self._secrets = secrets
        self._audit = audit
        self._clock = clock
        self._slots = EndpointSlots(settings.per_endpoint)
        self._rate = RateLimiter(settings.rate_per_second)
        self._wake = asyncio.Event()
        self._in_flight: set[asyncio.Task[None]] = set()
        # The last claim filled every free slot (or found none): more may be due, so a send
        # finishing claims again at once. Otherwise the next claim waits for a wake or the
        # poll: a claim per finished send was a write that found nothing, and it raced the
        # next run's commit (its wake then needed a second claim).
        self._starved = False
        self._task: asyncio.Task[None] | None = None
        self._disabling: set[str] = set()
        self._client: httpx.AsyncClient | None = None
        # Endpoint id -> (read at, endpoint, unsealed config): a delivery skips a store read
        # and a decrypt; changes through this process's API drop the entry (``forget``).
        self._endpoints: OrderedDict[str, tuple[float, WebhookEndpoint, EndpointConfig]] = (
            OrderedDict()
        )

    # --- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        """Stop claiming and wait for sends in flight (each bounded by the timeout); what is
        left unsent stays claimed until its lease expires, then another worker sends it."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait([self._task])  # a cancel of the caller itself still goes through
        if self._in_flight:
            await asyncio.wait(self._in_flight, timeout=self._settings.timeout + 1)
        if self._client is not None:
            await self._client.aclose()

    def _http(self) -> httpx.AsyncClient:
        # Built at the first delivery, not at start: its TLS trust store costs a server start
        # ~25 ms and ~2 MB that a server without webhook endpoints never needs.
        if self._client is None:
            self._client = guarded_client(
                self._policy, max_connections=self._settings.max_in_flight
            )
        return self._client

    def forget(self, endpoint_id: str) -> None:
        """The endpoint changed: read it again for the next delivery."""
        self._endpoints.pop(endpoint_id, None)

    async def _endpoint(
        self, account_id: str, endpoint_id: str
    ) -> tuple[WebhookEndpoint, EndpointConfig]:
        now = time.monotonic()
        cached = self._endpoints.get(endpoint_id)
        fresh = cached is not None and now - cached[0] < ENDPOINT_CACHE_SECONDS
        if cached is not None and fresh and cached[1].account_id == account_id:
            return cached[1], cached[2]
        endpoint = await self._store.webhooks.get_endpoint(account_id, endpoint_id)
        config = unseal(self._keyring, endpoint.secret)
        self._endpoints[endpoint_id] = (now, endpoint, config)
        self._endpoints.move_to_end(endpoint_id)
        if len(self._endpoints) > MAX_CACHED_ENDPOINTS:
            self._endpoints.popitem(last=False)
        return endpoint, config

    def wake(self) -> None:
        """New deliveries are due: look now rather than at the next poll."""
        self._wake.set()

    # --- claiming --------------------------------------------------------------------------

    async def _loop(self) -> None:
        while True:
            self._wake.clear()
            try:
                claimed = await self._claim()
            except Exception:
                log.warning("claiming webhook deliveries failed", exc_info=True)
                claimed = 0
            if claimed >= CLAIM_BATCH:
                continue  # more may be due
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for swallows a cancel that
            # lands just as the event is set (a send finishing as stop() begins), and this
            # loop then never ends.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._settings.poll_seconds):
                    await self._wake.wait()

    async def _claim(self) -> int:
        free = self._settings.max_in_flight - len(self._in_flight)
        if free <= 0:
            self._starved = True
            return 0
        limit = min(free, CLAIM_BATCH)
        due = await self._store.webhooks.admin_claim_due(
            worker=self._worker, limit=limit, lease=self._settings.lease
        )
        self._starved = len(due) >= limit
        for delivery in due:
            task = asyncio.get_running_loop().create_task(self._deliver(delivery))
            self._in_flight.add(task)
            task.add_done_callback(self._done)
        return len(due)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._in_flight.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("webhook delivery crashed", exc_info=task.exception())
        if self._starved:  # a slot is free and deliveries were left unclaimed for want of one
            self._starved = False
            self._wake.set()

    # --- one delivery ----------------------------------------------------------------------

    async def _deliver(self, delivery: WebhookDelivery) -> None:
        try:
            endpoint, config = await self._endpoint(delivery.account_id, delivery.endpoint_id)
        except NotFound:
            await self._finish(delivery, None, _failed("the endpoint was deleted"), final=True)
            return
        if not endpoint.enabled:
            await self._finish(delivery, endpoint, _failed("the endpoint is disabled"), final=True)
            return
        async with self._slots.for_endpoint(endpoint.id):
            await self._rate.acquire()
            outcome = await self.send(endpoint, config, delivery.id, delivery.payload)
        final = not outcome.delivered and (outcome.refused or not is_retryable(outcome.status_code))
        await self._finish(delivery, endpoint, outcome, final=final)

    async def send(
        self,
        endpoint: WebhookEndpoint,
        config: EndpointConfig,
        message_id: str,
        payload: Mapping[str, Any],
    ) -> Outcome:
        """Sign and POST ``payload`` to ``endpoint`` once."""
        started = time.perf_counter()
        try:
            resolved = None
            if config.ref is not None and self._secrets is not None:
                value = (await self._secrets(endpoint.account_id)).get(config.ref)
                resolved = None if value is None else str(value)
            now = self._clock()
            body = jsontext.dumps(dict(payload)).encode()
            headers = {
                **config.headers,
                "content-type": "application/json",
                "user-agent": f"flowrunner/{__version__}",
                **signature_headers(message_id, now, body, config.signing(now, resolved)),
            }
            self._policy.check_url(endpoint.url)  # the SSRF guard, again at send time
            async with self._http().stream(
                "POST", endpoint.url, content=body, headers=headers, timeout=self._settings.timeout
            ) as response:
                latency = (time.perf_counter() - started) * 1000
                text = await _read_some(response)
                return Outcome(
                    response.status_code,
                    attempts.snippet(text),
                    None,
                    retry_after_seconds(response.headers.get("retry-after"), now),
                    latency,
                )
        except DestinationRefused as exc:
            return replace(_failed(str(exc), started), refused=True)
        except (VaultError, WebhookError) as exc:
            return _failed(str(exc), started)
        except httpx.TimeoutException:
            return _failed(f"timed out after {self._settings.timeout:g}s", started)
        except httpx.HTTPError as exc:
            return _failed(f"{type(exc).__name__}: {exc}", started)

    async def _finish(
        self,
        delivery: WebhookDelivery,
        endpoint: WebhookEndpoint | None,
        outcome: Outcome,
        *,
        final: bool,
    ) -> None:
        number = delivery.attempts + 1
        now = self._clock()
        retry_at = None
        if not outcome.delivered and not final:
            wait = self._settings.schedule.delay(number, outcome.retry_after)
            retry_at = None if wait is None else now + timedelta(seconds=wait)
        try:
            await self._store.webhooks.record_attempt(
                delivery.account_id,
                delivery.id,
                worker=self._worker,
                delivered=outcome.delivered,
                status_code=outcome.status_code,
                error=outcome.error,
                retry_at=retry_at,
            )
        except Conflict:
            log.info("webhook delivery %s: claim lost before recording", delivery.id)
            return
        if self._observe is not None:
            self._observe("delivered" if outcome.delivered else "gave_up" if final else "retrying")
        await attempts.save(
            self._store.kv,
            delivery.account_id,
            attempts.Attempt(
                delivery.id, number, now, outcome.status_code, outcome.latency_ms,
                outcome.response, outcome.error, retry_at,
            ),
        )  # fmt: skip
        if endpoint is not None:
            await self._track_health(endpoint, outcome.delivered, now)

    async def _track_health(self, endpoint: WebhookEndpoint, ok: bool, now: datetime) -> None:
        """An endpoint that has failed every delivery for ``disable_after`` is disabled."""
        kv, account = self._store.kv, endpoint.account_id
        try:
            since = datetime.fromisoformat(str((await kv.get(account, HEALTH, endpoint.id)).value))
        except NotFound:
            since = None
        if ok:
            # A healthy endpoint has no marker: a read, where an unconditional delete was a
            # write (a commit) after every delivery.
            if since is not None:
                await kv.delete(account, HEALTH, endpoint.id)
            return
        if since is None:
            await kv.put(account, HEALTH, endpoint.id, now.isoformat())
            return
        if now - since < self._settings.disable_after or endpoint.id in self._disabling:
            return
        self._disabling.add(endpoint.id)  # two failures finishing together: one notice
        try:
            if not (await self._store.webhooks.get_endpoint(account, endpoint.id)).enabled:
                return
            await self._disable(endpoint, since, now)
        finally:
            self._disabling.discard(endpoint.id)

    async def _disable(self, endpoint: WebhookEndpoint, since: datetime, now: datetime) -> None:
        kv, account = self._store.kv, endpoint.account_id
        await self._store.webhooks.update_endpoint(account, endpoint.id, enabled=False)
        self.forget(endpoint.id)
        await kv.delete(account, HEALTH, endpoint.id)
        log.warning("webhook endpoint %s disabled: failing since %s", endpoint.id, since)
        await self._notify_disabled(endpoint, since, now)
        if self._audit is not None:
            await self._audit.record(
                actions.WEBHOOK_DISABLED,
                account_id=account,
                actor_id=None,
                target=endpoint.id,
                outcome="disabled",
                details={"failing_since": since.isoformat(), "url": endpoint.url},
            )

    async def _notify_disabled(
        self, endpoint: WebhookEndpoint, since: datetime, now: datetime
    ) -> None:
        """The notice: a ``webhook.disabled`` event to the account's other endpoints that
        subscribe to it (by name: an endpoint taking every event is not sent it)."""
        payload = envelope(
            "webhook.disabled",
            now,
            {"endpoint_id": endpoint.id, "url": endpoint.url, "failing_since": since.isoformat()},
        )
        others = await self._store.webhooks.list_endpoints(
            endpoint.account_id, enabled=True, event="webhook.disabled"
        )
        for other in others.items:
            if other.id != endpoint.id and "webhook.disabled" in other.events:
                await self._store.webhooks.enqueue(
                    endpoint.account_id, other.id, event_type="webhook.disabled", payload=payload
                )
                self.wake()


def _failed(error: str, started: float | None = None) -> Outcome:
    latency = 0.0 if started is None else (time.perf_counter() - started) * 1000
    return Outcome(None, "", error, None, latency)


async def _read_some(response: httpx.Response) -> str:
    """At most ``RESPONSE_BYTES`` of the body: a receiver's huge answer is never buffered."""
    data = b""
    async for chunk in response.aiter_bytes():
        data += chunk
        if len(data) >= RESPONSE_BYTES:
            break
    return data[:RESPONSE_BYTES].decode("utf-8", "replace")
