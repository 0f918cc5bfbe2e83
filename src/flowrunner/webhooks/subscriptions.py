"""Who receives an event: the account's endpoints and the flow's ``metadata.webhooks``.

A flow's ``metadata.webhooks[]`` entries become endpoints of the account too (described
``flow:<flow id>:<index>:<digest of the entry>``, filtered to that flow), created on the first
event that needs them and updated when a new flow version changes the entry: deliveries of
both kinds then share one outbox, one history and one API.

Runs look endpoints up on every status change, so the account's list is cached for a moment
(``ttl``): an account without endpoints costs one read per ``ttl``, not one per run. Changes
made through this process's API drop the cache at once; another process's within ``ttl``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from flowrunner.errors import FlowrunnerError
from flowrunner.outbound import AddressPolicy
from flowrunner.secrets import Keyring
from flowrunner.storage import Store, WebhookEndpoint
from flowrunner.webhooks.secretbox import EndpointConfig, seal, unseal

log = logging.getLogger(__name__)

FLOW_PREFIX = "flow:"
DEFAULT_FLOW_EVENTS = ("execution.completed", "execution.failed")
MAX_ENDPOINTS = 1000
_SECRET_REF = "${secrets."


@dataclass(frozen=True, slots=True)
class Subscriber:
    endpoint: WebhookEndpoint
    config: EndpointConfig

    def wants(self, event_type: str, flow_id: str | None) -> bool:
        events = self.endpoint.events
        return (
            self.endpoint.enabled
            and (not events or event_type in events)
            and (flow_id is None or self.config.covers(flow_id))
        )


class Subscriptions:
    def __init__(
        self,
        store: Store,
        keyring: Keyring,
        policy: AddressPolicy,
        *,
        ttl: float = 2.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._keyring = keyring
        self._policy = policy
        self._ttl = ttl
        self._monotonic = monotonic
        self._cache: dict[str, tuple[float, list[Subscriber]]] = {}
        self._loading: dict[str, asyncio.Future[list[Subscriber]]] = {}
        self._generation = 0  # bumped by ``invalidate``
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}
        # Flow webhook entries that could not be saved (a refused URL): not retried on every
        # run of the flow, only when the flow's entry changes (a new digest).
        self._refused: set[str] = set()

    def invalidate(self, account_id: str) -> None:
        self._cache.pop(account_id, None)
        # A read in flight may predate the change: it is neither shared nor cached.
        self._loading.pop(account_id, None)
        self._generation += 1

    async def subscribers(self, account_id: str) -> list[Subscriber]:
        cached = self._cache.get(account_id)
        now = self._monotonic()
        if cached is not None and now - cached[0] < self._ttl:
            return cached[1]
        # Single flight: the runs that find the list expired together share one read.
        loading = self._loading.get(account_id)
        if loading is None:
            loading = asyncio.ensure_future(self._load(account_id, now))
            self._loading[account_id] = loading
            loading.add_done_callback(partial(self._loaded, account_id))
        return await asyncio.shield(loading)

    def _loaded(self, account_id: str, done: asyncio.Future[list[Subscriber]]) -> None:
        if self._loading.get(account_id) is done:
            del self._loading[account_id]
        if not done.cancelled():
            done.exception()  # retrieved: the runs that awaited it may all be gone

    async def _load(self, account_id: str, now: float) -> list[Subscriber]:
        generation = self._generation
        found: list[Subscriber] = []
        cursor: str | None = None
        while len(found) < MAX_ENDPOINTS:
            page = await self._store.webhooks.list_endpoints(account_id, cursor=cursor)
            found += [Subscriber(e, unseal(self._keyring, e.secret)) for e in page.items]
            cursor = page.next_cursor
            if cursor is None:
                break
        if len(self._cache) > 10_000:  # bounded: forget the oldest half
            for key in list(self._cache)[:5_000]:
                del self._cache[key]
        if generation == self._generation:  # else invalidated while this read ran
            self._cache[account_id] = (now, found)
        return found

    async def endpoint_ids(
        self,
        account_id: str,
        flow_id: str,
        event_type: str,
        flow_webhooks: Sequence[Mapping[str, Any]] = (),
    ) -> list[str]:
        subscribers = await self.subscribers(account_id)
        if flow_webhooks:
            subscribers = await self._with_flow_endpoints(
                account_id, flow_id, flow_webhooks, subscribers
            )
        return [s.endpoint.id for s in subscribers if s.wants(event_type, flow_id)]

    async def _with_flow_endpoints(
        self,
        account_id: str,
        flow_id: str,
        specs: Sequence[Mapping[str, Any]],
        subscribers: list[Subscriber],
    ) -> list[Subscriber]:
        wanted = {_description(flow_id, i, spec): (i, spec) for i, spec in enumerate(specs)}
        have = {s.endpoint.description for s in subscribers} | self._refused
        if all(d in have for d in wanted):
            return subscribers
        lock = self._locks.setdefault((account_id, flow_id), asyncio.Lock())
        async with lock:
            self.invalidate(account_id)
            subscribers = await self.subscribers(account_id)
            by_slot = {
                s.endpoint.description.rsplit(":", 1)[0]: s.endpoint
                for s in subscribers
                if s.endpoint.description.startswith(f"{FLOW_PREFIX}{flow_id}:")
            }
            for description, (index, spec) in wanted.items():
                if description in self._refused or any(
                    s.endpoint.description == description for s in subscribers
                ):
                    continue
                try:
                    await self._save_flow_endpoint(
                        account_id,
                        flow_id,
                        description,
                        spec,
                        by_slot.get(f"{FLOW_PREFIX}{flow_id}:{index}"),
                    )
                except FlowrunnerError as exc:
                    log.warning("flow webhook %s of flow %s not saved: %s", index, flow_id, exc)
                    if len(self._refused) < 10_000:
                        self._refused.add(description)
            self.invalidate(account_id)
            return await self.subscribers(account_id)

    async def _save_flow_endpoint(
        self,
        account_id: str,
        flow_id: str,
        description: str,
        spec: Mapping[str, Any],
        existing: WebhookEndpoint | None,
    ) -> None:
        url = str(spec["url"])
        self._policy.check_url(url)  # the SSRF guard, when the subscription is made
        events = list(spec.get("events") or DEFAULT_FLOW_EVENTS)
        secret = str(spec.get("secret") or "")
        ref = None
        if secret.startswith(_SECRET_REF) and secret.endswith("}"):
            ref, secret = secret[len(_SECRET_REF) : -1], ""
        config = EndpointConfig(
            current=secret or None,
            ref=ref,
            headers={str(k): str(v) for k, v in dict(spec.get("headers") or {}).items()},
            flow_ids=(flow_id,),
        )
        sealed = seal(self._keyring, config)
        if existing is None:
            await self._store.webhooks.create_endpoint(
                account_id, url=url, secret=sealed, events=events, description=description
            )
        else:
            await self._store.webhooks.update_endpoint(
                account_id, existing.id, url=url, secret=sealed, events=events,
                description=description,
            )  # fmt: skip


def _description(flow_id: str, index: int, spec: Mapping[str, Any]) -> str:
    digest = hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()
    return f"{FLOW_PREFIX}{flow_id}:{index}:{digest[:16]}"
