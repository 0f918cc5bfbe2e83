"""Plain frozen records every storage backend returns, and the small value types around them.

Records carry no behaviour and no driver types: timestamps are timezone-aware UTC
``datetime``s, JSON columns are plain Python values, identifiers are strings. Backends build
them; services read them and ask the store for changes (records are never mutated in place).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, Literal, TypeVar

from flowrunner.errors import NotFound

JSONValue = Any
"""A value that survives ``json.dumps``/``json.loads`` unchanged (dict, list, str, number...)."""

Clock = Callable[[], datetime]
"""Where a store reads "now" from; injected so leases, TTLs and tests agree on time."""

T = TypeVar("T")

ExecutionStatus = Literal["queued", "running", "waiting", "completed", "failed", "canceled"]
ACTIVE_STATUSES: tuple[ExecutionStatus, ...] = ("queued", "running")

SYSTEM_ACCOUNT = "_system"
"""The pseudo-account whose key-value partition holds the server's own records (triggers,
retention policies). No account has this id (account ids are generated hex), and a run's
``store`` node reaches its own account's partition only."""
DeliveryStatus = Literal["pending", "delivered", "dead"]
FINISHED_DELIVERY: tuple[DeliveryStatus, ...] = ("delivered", "dead")
"""Delivery statuses nothing more happens to: retention deletes these with their run."""

ATTEMPTS_NAMESPACE = "webhook-attempts"
"""The KV namespace of each delivery attempt's detail (``flowrunner.webhooks.attempts``), keyed
``<delivery id>:<attempt number>``. Named here because a store deletes a pruned run's
deliveries with their attempts (``ExecutionStore.delete``)."""


def attempts_prefix(delivery_id: str) -> str:
    """The key prefix of ``delivery_id``'s attempts in ``ATTEMPTS_NAMESPACE``."""
    return f"{delivery_id}:"


def utcnow() -> datetime:
    return datetime.now(UTC)


def delivery_status(delivered: bool, retry_at: datetime | None) -> DeliveryStatus:
    """A delivery attempt's outcome: delivered, pending another try, or dead (no retry left)."""
    if delivered:
        return "delivered"
    return "pending" if retry_at is not None else "dead"


def new_id() -> str:
    """A 32-hex-char id whose first 12 chars are the creation time in ms.

    Time-ordered ids keep B-tree inserts append-mostly and make the ``(created, id)`` order of
    listings match creation order; the 80 random bits keep them unique across processes.
    """
    return f"{int(time.time() * 1000):012x}{os.urandom(10).hex()}"


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a listing; pass ``next_cursor`` back to get the next one (None = last)."""

    items: list[T]
    next_cursor: str | None = None


# --- accounts and tokens -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Account:
    id: str
    username: str
    password_hash: str
    is_admin: bool
    disabled: bool
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class ApiToken:
    id: str
    account_id: str
    name: str
    prefix: str
    token_hash: str
    created_at: datetime
    last_used_at: datetime | None = None
    expires_at: datetime | None = None
    revoked_at: datetime | None = None

    def is_usable(self, now: datetime) -> bool:
        """Not revoked and not expired at ``now``."""
        if self.revoked_at is not None:
            return False
        return self.expires_at is None or self.expires_at > now


# --- flows ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Flow:
    id: str
    account_id: str
    name: str
    description: str
    tags: tuple[str, ...]
    current_version: int
    """Number of the latest version; 0 until the first version is added."""
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class FlowVersion:
    """One immutable revision of a flow's YAML; numbers start at 1 and have no gaps."""

    flow_id: str
    account_id: str
    number: int
    yaml: str
    checksum: str
    """sha256 hex digest of the UTF-8 YAML text, computed by the store."""
    author: str | None
    created_at: datetime
    message: str | None = None
    """What the author said of the change (``flows push --message``); None when unsaid."""


# --- secrets -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Secret:
    """An encrypted secret; the store never sees plaintext (the vault encrypts)."""

    account_id: str
    key: str
    ciphertext: bytes
    key_id: str
    metadata: Mapping[str, JSONValue]
    created_at: datetime
    updated_at: datetime


# --- executions ----------------------------------------------------------------------------

DETACHED_KEY_PREFIX = "on-failure:"
"""Idempotency key prefix of a child run that runs on its own, not inside its parent's task:
the on-failure run a failed run starts (``on-failure:<failed run id>``). Crash recovery
resumes such a child like a top-level run (its parent has ended: nobody else would), and it
sends its own webhook events."""


@dataclass(frozen=True, slots=True)
class Execution:
    id: str
    account_id: str
    flow_id: str
    flow_version: int
    status: ExecutionStatus
    input: JSONValue
    created_at: datetime
    output: JSONValue = None
    error: Mapping[str, JSONValue] | None = None
    progress: float = 0.0
    current_node: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    lease_owner: str | None = None
    lease_expires_at: datetime | None = None
    idempotency_key: str | None = None
    last_event_seq: int = 0
    resume_attempts: int = 0
    """Times crash recovery took the run over since it last saved a checkpoint."""
    parent_id: str | None = None
    """The execution whose ``flow`` node started this one as a sub-flow, or whose failure
    started it as its on-failure run (None: top level)."""
    usage: Mapping[str, JSONValue] | None = None
    """Model-call token usage (llm/agent nodes), run totals and per node, set when the run
    ends: ``{calls, prompt_tokens, completion_tokens, total_tokens, nodes: {id: {...}}}``.
    None when the run made no model call."""
    wake_at: datetime | None = None
    """While ``waiting``: when the run is due to be woken (None: only a signal wakes it)."""
    wait: Mapping[str, JSONValue] | None = None
    """The run's last durable wait (``executions.waits``): which node visit parked it, for
    what, and the signal payload once one was delivered. Kept after the wake: the resumed
    node reads it."""

    @property
    def detached(self) -> bool:
        """Run by an executor on its own (a top-level or on-failure run), not by a parent."""
        return self.parent_id is None or (self.idempotency_key or "").startswith(
            DETACHED_KEY_PREFIX
        )


def leased(owner: str | None, ttl: timedelta | None, now: datetime) -> dict[str, Any]:
    """The lease fields of an execution created with ``owner``'s lease (``create``)."""
    if owner is None:
        return {}
    if ttl is None:
        raise ValueError("a lease_owner needs a lease_ttl")
    return {"lease_owner": owner, "lease_expires_at": now + ttl}


def no_version_to_pin(account_id: str, flow_id: str) -> NotFound:
    """``create(flow_version=None)``'s error on every backend: no live flow with a version."""
    return NotFound("no flow with a version to run", account_id=account_id, flow_id=flow_id)


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event to append; the store assigns its sequence number, and its timestamp unless
    ``time`` says when it happened (events are often written in batches, after the fact)."""

    type: str
    data: Mapping[str, JSONValue] = field(default_factory=dict)
    time: datetime | None = None


@dataclass(frozen=True, slots=True)
class ExecutionEvent:
    execution_id: str
    account_id: str
    seq: int
    """1, 2, 3... per execution, gap-free, assigned by the store in append order."""
    type: str
    data: Mapping[str, JSONValue]
    created_at: datetime


def appended(execution: Execution, events: Sequence[NewEvent]) -> list[ExecutionEvent]:
    """``events`` as the ``update(events=...)`` that returned ``execution`` stored them: the
    last one numbered ``execution.last_event_seq``, the others just before it. Each carries
    its own ``time``; one without gets the time of this call, close to the store's (the
    runner's events all have one)."""
    first = execution.last_event_seq - len(events) + 1
    now = utcnow()
    return [
        ExecutionEvent(
            execution.id, execution.account_id, first + i, e.type, dict(e.data), e.time or now
        )
        for i, e in enumerate(events)
    ]


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """The latest resumable state of a run (one per execution, overwritten on save)."""

    execution_id: str
    account_id: str
    shared: JSONValue
    next_node: str | None
    results: Mapping[str, JSONValue]
    updated_at: datetime
    resume: Mapping[str, JSONValue] = field(default_factory=dict)
    """What resuming needs besides the state: the runner's own bookkeeping (the node that
    last ran, the step count, the error an error edge carries, the flow's node count)."""


@dataclass(frozen=True, slots=True)
class NewCheckpoint:
    """A checkpoint to save with a run's step (see ``ExecutionStore.record_step``)."""

    shared: JSONValue
    next_node: str | None
    results: Mapping[str, JSONValue]
    resume: Mapping[str, JSONValue] = field(default_factory=dict)


# --- webhooks ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WebhookEndpoint:
    id: str
    account_id: str
    url: str
    events: tuple[str, ...]
    """Event types delivered to this endpoint; empty means every event."""
    secret: str
    enabled: bool
    created_at: datetime
    updated_at: datetime
    description: str = ""


@dataclass(frozen=True, slots=True)
class WebhookDelivery:
    """One outbox entry: an event waiting for (or done with) delivery to one endpoint."""

    id: str
    account_id: str
    endpoint_id: str
    event_type: str
    payload: Mapping[str, JSONValue]
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime
    created_at: datetime
    last_status_code: int | None = None
    last_error: str | None = None
    delivered_at: datetime | None = None
    claimed_by: str | None = None
    claimed_until: datetime | None = None
    execution_id: str | None = None
    """The run whose state change wrote it (an ``outbox`` entry of ``ExecutionStore.update``
    or ``record_step``); None for events of no run (flow changes, ``webhook.disabled``
    notices, test sends, manual redeliveries). Retention deletes it with that run once it is
    finished (``ExecutionStore.delete``)."""


@dataclass(frozen=True, slots=True)
class NewDelivery:
    """An outbox entry written with a state change (``ExecutionStore.update(outbox=...)``):
    the change and its webhook events commit together or not at all."""

    endpoint_id: str
    event_type: str
    payload: Mapping[str, JSONValue]


def pending_delivery(
    account_id: str,
    entry: NewDelivery,
    now: datetime,
    not_before: datetime | None = None,
    *,
    execution_id: str | None = None,
) -> WebhookDelivery:
    """The outbox record for ``entry``: pending, due at ``not_before`` (default: now), of the
    run ``execution_id`` when a run's state change wrote it."""
    return WebhookDelivery(
        id=new_id(),
        account_id=account_id,
        endpoint_id=entry.endpoint_id,
        event_type=entry.event_type,
        payload=dict(entry.payload),
        status="pending",
        attempts=0,
        next_attempt_at=not_before or now,
        created_at=now,
        execution_id=execution_id,
    )


# --- audit ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NewAuditEntry:
    action: str
    account_id: str | None = None
    actor: str | None = None
    target: str | None = None
    data: Mapping[str, JSONValue] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One link of a hash chain: ``hash = sha256(canonical(content) + prev_hash)``."""

    chain: str
    seq: int
    action: str
    account_id: str | None
    actor: str | None
    target: str | None
    data: Mapping[str, JSONValue]
    created_at: datetime
    prev_hash: str
    hash: str


@dataclass(frozen=True, slots=True)
class AuditChain:
    """A chain as the store knows it: its name and the head it recorded at the last append.

    ``head_seq``/``head_hash`` are None when records exist under a name no append ever
    recorded a head for (rows written around the store). Backends that keep no separate head
    (memory, DynamoDB) report their last record as the head.
    """

    chain: str
    head_seq: int | None
    head_hash: str | None


# --- key-value -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KVEntry:
    account_id: str
    namespace: str
    key: str
    value: JSONValue
    created_at: datetime
    updated_at: datetime
    expires_at: datetime | None = None
