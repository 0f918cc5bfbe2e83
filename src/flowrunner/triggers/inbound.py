"""``InboundHooks``: a request to ``/api/v1/hooks/{trigger_id}`` → verified → a run.

Order of checks, cheapest and least revealing first: the trigger exists and is enabled (else
404, the same answer for both so ids cannot be probed), the method is allowed (405), the
client is not locked out by failed verifications (429), the request rate (429), the body size
(413) and content type (415), then the signature (401, audited). Only then is the body parsed
(400 if it does not match its content type) and the run started through the executions
service, so a triggered run gets what an API run gets: fairness, recording, events.

The sender's delivery id becomes the run's idempotency key (``hook:<trigger>:<id>``): a
redelivered webhook answers with the run the first delivery started.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol

import orjson
from cachetools import TTLCache

from flowrunner.audit import AuditLog
from flowrunner.errors import Conflict, NotFound
from flowrunner.executions.service import ExecutionService
from flowrunner.nodes.triggering import RESPOND_KEY
from flowrunner.storage import Execution, Store
from flowrunner.triggers.limits import WindowLimiter
from flowrunner.triggers.records import Trigger
from flowrunner.triggers.repository import TriggerRepository
from flowrunner.triggers.requests import BadBody, HookRequest, run_input
from flowrunner.triggers.verification import VerificationFailed, verify

HOOK_REFUSED = "trigger.verification_failed"
MAX_FAILURES_PER_MINUTE = 10
"""Failed verifications per trigger and client address before 429s (and no more audits)."""
LOOKUP_TTL = 1.0
"""Seconds a trigger record (and its key) is reused. A change through this process (a
disable, an edit, its secret rotated or deleted) is seen at once (``forget``, ``forget_key``);
one made through another server process within this."""


class KeySource(Protocol):
    async def resolve(self, account_id: str, key: str) -> Any: ...


class HookRefused(Exception):
    """The request starts nothing; the route answers ``status`` in the error envelope."""

    def __init__(
        self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})


@dataclass(frozen=True, slots=True)
class HookAnswer:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    media_type: str = "application/json"


@dataclass(frozen=True, slots=True)
class HookLimits:
    max_body: int = 1024 * 1024
    rate_per_minute: int = 6000
    sync_timeout: float = 30.0


class InboundHooks:
    def __init__(
        self,
        store: Store,
        triggers: TriggerRepository,
        runs: ExecutionService,
        keys: KeySource,
        audit: AuditLog,
        *,
        limits: HookLimits = HookLimits(),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._triggers = triggers
        self._runs = runs
        self._known = store.executions.get_by_idempotency_key
        self._keys = keys
        self._audit = audit
        self._limits = limits
        self._clock = clock
        self._rate = WindowLimiter()
        self._failures = WindowLimiter()
        self._cache: TTLCache[str, tuple[Trigger, str | None]] = TTLCache(
            maxsize=4096, ttl=LOOKUP_TTL
        )
        self._loading: dict[str, asyncio.Future[tuple[Trigger, str | None]]] = {}
        self._generation = 0  # bumped by ``forget``

    async def handle(self, trigger_id: str, request: HookRequest) -> HookAnswer:
        trigger, key = await self._lookup(trigger_id)
        spec = trigger.webhook
        if request.method not in spec.methods:
            allowed = ", ".join(spec.methods)
            raise HookRefused(405, "method_not_allowed", f"this trigger accepts {allowed}",
                              {"Allow": allowed})  # fmt: skip
        lockout = f"{trigger.id}|{request.client}"
        if wait := self._failures.retry_after(lockout, MAX_FAILURES_PER_MINUTE):
            raise _too_many("too many failed verifications", wait)
        if wait := self._rate.hit(trigger.id, spec.rate_limit or self._limits.rate_per_minute):
            raise _too_many("the trigger's rate limit is reached", wait)
        max_body = min(spec.max_body or self._limits.max_body, self._limits.max_body)
        if len(request.raw) > max_body:
            raise HookRefused(413, "payload_too_large",
                              f"the body is larger than the limit of {max_body} bytes")  # fmt: skip
        if spec.content_types and request.media_type not in spec.content_types:
            raise HookRefused(
                415, "unsupported_media_type",
                f"content type {request.media_type or '(none)'!r} is not one of "
                f"{', '.join(spec.content_types)}",
            )  # fmt: skip
        try:
            verified = verify(spec.verify, key, request.raw, request.headers, self._clock())
        except VerificationFailed as exc:
            self._failures.hit(lockout, MAX_FAILURES_PER_MINUTE)
            await self._audit.record(
                HOOK_REFUSED,
                account_id=trigger.account_id,
                actor_id=None,
                target=trigger.id,
                outcome="failed",
                details={"reason": exc.reason, "client": request.client,
                         "scheme": str(spec.verify.get("scheme"))},
            )  # fmt: skip
            raise HookRefused(401, "unauthenticated", "webhook verification failed") from exc
        try:
            drop = [str(spec.verify["header"])] if spec.verify.get("scheme") == "token" else []
            payload = run_input(request, drop)
        except BadBody as exc:
            raise HookRefused(400, "bad_request", str(exc)) from exc
        payload["trigger"] = {"id": trigger.id, "name": trigger.name, "kind": "webhook",
                              "delivery_id": verified.delivery_id}  # fmt: skip
        execution, created = await self._start(trigger, payload, verified.delivery_id)
        if spec.response == "sync":
            return await self._sync_answer(trigger, execution, created)
        return _json(202, {"execution_id": execution.id, "status": execution.status}, created)

    async def _lookup(self, trigger_id: str) -> tuple[Trigger, str | None]:
        cached = self._cache.get(trigger_id)
        if cached is not None:
            return cached
        # Single flight: when the cached record expires under load, every request in flight
        # would read the store at once; the first reads, the others await its answer.
        loading = self._loading.get(trigger_id)
        if loading is None:
            loading = asyncio.ensure_future(self._load(trigger_id, self._generation))
            self._loading[trigger_id] = loading
            loading.add_done_callback(partial(self._loaded, trigger_id))
        return await asyncio.shield(loading)

    def _loaded(self, trigger_id: str, done: asyncio.Future[Any]) -> None:
        if self._loading.get(trigger_id) is done:
            del self._loading[trigger_id]
        if not done.cancelled():
            done.exception()  # retrieved: the requests that awaited it may all be gone

    async def _load(self, trigger_id: str, generation: int) -> tuple[Trigger, str | None]:
        try:
            trigger = await self._triggers.find(trigger_id)
        except NotFound:
            trigger = None
        if trigger is None or not trigger.enabled or trigger.kind != "webhook":
            raise HookRefused(404, "not_found", "not found")
        key = None
        name = trigger.webhook.verify.get("secret")
        if name:
            try:
                value = await self._keys.resolve(trigger.account_id, str(name))
            except NotFound:
                value = None  # verification refuses: "the secret is missing"
            key = value if isinstance(value, str) else None
        if generation == self._generation:  # else a change was made while this read ran
            self._cache[trigger_id] = (trigger, key)
        return trigger, key

    def forget(self, trigger_id: str) -> None:
        """Drop a cached trigger (this process changed it)."""
        self._cache.pop(trigger_id, None)
        # A read in flight may predate the change: it is neither shared nor cached.
        self._loading.pop(trigger_id, None)
        self._generation += 1

    def forget_key(self, account_id: str, name: str) -> None:
        """Drop the cached triggers verified with the account's secret ``name`` (this process
        changed or deleted it): a rotated key is refused from the next request on."""
        for trigger_id, (trigger, _) in list(self._cache.items()):
            if trigger.account_id == account_id and trigger.webhook.verify.get("secret") == name:
                self._cache.pop(trigger_id, None)  # (an entry expiring meanwhile: gone already)
        # Reads in flight may hold the old value; a secret change is rare, forget them all.
        self._loading.clear()
        self._generation += 1

    async def _start(
        self, trigger: Trigger, payload: dict[str, Any], delivery_id: str | None
    ) -> tuple[Execution, bool]:
        key = f"hook:{trigger.id}:{delivery_id}" if delivery_id else None
        try:
            # ``start`` looks the key up itself: a first delivery costs that one read.
            started = await self._runs.start(
                trigger.account_id, trigger.flow_id, payload, idempotency_key=key
            )
        except Conflict:
            if key is None:
                raise
            # A redelivery carries the same id but not the same headers (a new timestamp and
            # signature), so ``start`` finds the key used for another input; or a concurrent
            # delivery of the same id won the insert. Either way the first run answers.
            return await self._known(trigger.account_id, key), False
        return started.execution, started.created

    async def _sync_answer(
        self, trigger: Trigger, execution: Execution, created: bool
    ) -> HookAnswer:
        timeout = min(trigger.webhook.timeout, self._limits.sync_timeout)
        done = await self._runs.wait(trigger.account_id, execution.id, within=timeout)
        if done.status == "completed":
            output = done.output
            if isinstance(output, Mapping) and isinstance(output.get(RESPOND_KEY), Mapping):
                return _responded(output[RESPOND_KEY], done.id)
            return _json(200, output, created, done.id)
        if done.status in ("failed", "canceled"):
            error = {"code": f"run_{done.status}", "message": f"the run {done.status}",
                     "execution_id": done.id}  # fmt: skip
            return _json(500, {"error": error}, created, done.id)
        # Still running at the limit: answer as async mode would; the run goes on.
        return _json(202, {"execution_id": done.id, "status": done.status}, created, done.id)


def _too_many(message: str, wait: int) -> HookRefused:
    return HookRefused(429, "rate_limited", message, {"Retry-After": str(wait)})


def _json(status: int, body: Any, created: bool, execution_id: str | None = None) -> HookAnswer:
    headers = {}
    if execution_id is not None:
        headers["X-Flowrunner-Execution-Id"] = execution_id
    if not created:
        headers["Idempotent-Replayed"] = "true"
    return HookAnswer(status, orjson.dumps(body), headers)


def _responded(answer: Mapping[str, Any], execution_id: str) -> HookAnswer:
    headers = {str(k): str(v) for k, v in (answer.get("headers") or {}).items()}
    headers["X-Flowrunner-Execution-Id"] = execution_id
    body = answer.get("body")
    given_type = next((v for k, v in headers.items() if k.lower() == "content-type"), None)
    if isinstance(body, str) and given_type is None:
        return HookAnswer(int(answer.get("status", 200)), body.encode(), headers, "text/plain")
    if isinstance(body, str):
        return HookAnswer(int(answer.get("status", 200)), body.encode(), headers, given_type or "")
    return HookAnswer(int(answer.get("status", 200)), orjson.dumps(body), headers,
                      given_type or "application/json")  # fmt: skip
