"""The storage contract: one small async Protocol per entity family, and the ``Store`` aggregate.

Rules every backend follows (the conformance suite in ``tests/storage`` proves them):

- Every call is scoped by ``account_id``; a record of another account behaves exactly like a
  missing one (``NotFound``). Calls that cross accounts say so with an ``admin_`` prefix.
- Missing records raise ``NotFound``; unique or optimistic-concurrency violations raise
  ``Conflict``; an unreachable or failing database raises ``StorageUnavailable``. No driver
  exception ever leaves a backend.
- Listings return a ``Page`` ordered newest first (``created_at`` desc, then ``id`` desc) unless
  the method says otherwise; the cursor is opaque and only valid for the same filters.
- Time comes from the store's injected clock, never from the database server.
"""

from __future__ import annotations

import builtins
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Protocol

from flowrunner.storage.records import (
    Account,
    ApiToken,
    AuditChain,
    AuditRecord,
    Checkpoint,
    DeliveryStatus,
    Execution,
    ExecutionEvent,
    ExecutionStatus,
    Flow,
    FlowVersion,
    JSONValue,
    KVEntry,
    NewAuditEntry,
    NewCheckpoint,
    NewEvent,
    Page,
    Secret,
    WebhookDelivery,
    WebhookEndpoint,
)

DEFAULT_LIMIT = 50
MAX_LIMIT = 1000


class AccountStore(Protocol):
    async def create(self, username: str, password_hash: str, *, is_admin: bool = False) -> Account:
        """A new account; ``Conflict`` if the username is taken."""
        ...

    async def get(self, account_id: str) -> Account: ...

    async def get_by_username(self, username: str) -> Account: ...

    async def update(
        self,
        account_id: str,
        *,
        password_hash: str | None = None,
        is_admin: bool | None = None,
        disabled: bool | None = None,
    ) -> Account:
        """Change the given fields (None = leave as is)."""
        ...

    async def admin_list(
        self,
        *,
        limit: int = DEFAULT_LIMIT,
        cursor: str | None = None,
        username_contains: str | None = None,
    ) -> Page[Account]: ...


class TokenStore(Protocol):
    async def create(
        self,
        account_id: str,
        *,
        name: str,
        prefix: str,
        token_hash: str,
        expires_at: datetime | None = None,
    ) -> ApiToken:
        """Store a token's hash; ``Conflict`` if the hash already exists."""
        ...

    async def get_by_hash(self, token_hash: str) -> ApiToken:
        """The token with this hash, whoever owns it (authentication starts here)."""
        ...

    async def get(self, account_id: str, token_id: str) -> ApiToken: ...

    async def list(
        self, account_id: str, *, limit: int = DEFAULT_LIMIT, cursor: str | None = None
    ) -> Page[ApiToken]: ...

    async def touch(self, account_id: str, token_id: str) -> None:
        """Record a use now (``last_used_at``)."""
        ...

    async def revoke(self, account_id: str, token_id: str) -> ApiToken:
        """Mark revoked now; revoking twice keeps the first time."""
        ...


class FlowStore(Protocol):
    async def create(
        self,
        account_id: str,
        *,
        name: str,
        description: str = "",
        tags: Sequence[str] = (),
    ) -> Flow:
        """A new flow with ``current_version == 0``; add its YAML with ``add_version``."""
        ...

    async def get(
        self, account_id: str, flow_id: str, *, include_deleted: bool = False
    ) -> Flow: ...

    async def list(
        self,
        account_id: str,
        *,
        limit: int = DEFAULT_LIMIT,
        cursor: str | None = None,
        name_contains: str | None = None,
        tags: Collection[str] = (),
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        include_deleted: bool = False,
    ) -> Page[Flow]:
        """Flows matching every filter; ``tags`` keeps flows carrying all of the given tags,
        ``name_contains`` is case-insensitive."""
        ...

    async def update(
        self,
        account_id: str,
        flow_id: str,
        *,
        name: str | None = None,
        description: str | None = None,
        tags: Sequence[str] | None = None,
    ) -> Flow: ...

    async def delete(self, account_id: str, flow_id: str) -> None:
        """Soft delete (sets ``deleted_at``); versions are kept for past executions."""
        ...

    async def add_version(
        self,
        account_id: str,
        flow_id: str,
        *,
        yaml: str,
        author: str | None = None,
        expected_current: int | None = None,
    ) -> FlowVersion:
        """Append version ``current_version + 1`` and bump the flow in one atomic step.

        With ``expected_current``, ``Conflict`` unless the flow is still at that version
        (optimistic concurrency for editors that loaded an older version).
        """
        ...

    async def get_version(self, account_id: str, flow_id: str, number: int) -> FlowVersion:
        """A version of a flow, deleted or not (executions pin versions)."""
        ...

    async def list_versions(
        self,
        account_id: str,
        flow_id: str,
        *,
        limit: int = DEFAULT_LIMIT,
        cursor: str | None = None,
    ) -> Page[FlowVersion]:
        """Newest version first."""
        ...


class SecretStore(Protocol):
    async def put(
        self,
        account_id: str,
        key: str,
        *,
        ciphertext: bytes,
        key_id: str,
        metadata: Mapping[str, JSONValue] | None = None,
    ) -> Secret:
        """Create or replace (keeps ``created_at``)."""
        ...

    async def get(self, account_id: str, key: str) -> Secret: ...

    async def delete(self, account_id: str, key: str) -> None: ...

    async def list(
        self,
        account_id: str,
        *,
        limit: int = DEFAULT_LIMIT,
        cursor: str | None = None,
        key_prefix: str = "",
    ) -> Page[Secret]:
        """Ordered by key."""
        ...

    async def admin_list_by_key_id(
        self, key_id: str, *, limit: int = DEFAULT_LIMIT, cursor: str | None = None
    ) -> Page[Secret]:
        """Secrets of every account encrypted under ``key_id`` (for key rotation)."""
        ...


class ExecutionStore(Protocol):
    async def create(
        self,
        account_id: str,
        *,
        flow_id: str,
        flow_version: int,
        input: JSONValue = None,
        idempotency_key: str | None = None,
        status: ExecutionStatus = "queued",
        parent_id: str | None = None,
    ) -> Execution:
        """A new execution; ``Conflict`` if ``idempotency_key`` is already used in the account
        (fetch the original with ``get_by_idempotency_key``). ``parent_id`` makes it a child
        run (a sub-flow) of that execution."""
        ...

    async def get(self, account_id: str, execution_id: str) -> Execution: ...

    async def get_by_idempotency_key(self, account_id: str, key: str) -> Execution: ...

    async def list(
        self,
        account_id: str,
        *,
        limit: int = DEFAULT_LIMIT,
        cursor: str | None = None,
        status: Collection[ExecutionStatus] = (),
        flow_id: str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        parent_id: str | None = None,
    ) -> Page[Execution]:
        """Newest first; ``parent_id`` keeps the child runs of that execution only."""
        ...

    async def update(
        self,
        account_id: str,
        execution_id: str,
        *,
        expected_status: Collection[ExecutionStatus] = (),
        status: ExecutionStatus | None = None,
        output: JSONValue = None,
        error: Mapping[str, JSONValue] | None = None,
        progress: float | None = None,
        current_node: str | None = None,
        started_at: datetime | None = None,
        finished_at: datetime | None = None,
    ) -> Execution:
        """Set the given fields (None = leave as is).

        With ``expected_status``, ``Conflict`` unless the current status is one of them: a
        compare-and-set that lets the state machine reject racing transitions. A final status
        (completed, failed, canceled) also releases the lease in the same write: a finished
        run holds no lease. Completed and canceled also delete the run's checkpoint (nothing
        is left to resume); a failed run keeps it, for a retry with resume.
        """
        ...

    # events: append-only, numbered by the store ----------------------------------------

    async def append_events(
        self, account_id: str, execution_id: str, events: Sequence[NewEvent]
    ) -> builtins.list[ExecutionEvent]:
        """Append atomically; numbers continue the execution's sequence with no gap even
        when several writers append at once."""
        ...

    async def list_events(
        self,
        account_id: str,
        execution_id: str,
        *,
        after_seq: int = 0,
        limit: int = MAX_LIMIT,
    ) -> builtins.list[ExecutionEvent]:
        """Events with ``seq > after_seq`` in ascending order (tail with the last seq seen)."""
        ...

    # checkpoints: one per execution, while it can still be resumed ----------------------

    async def save_checkpoint(
        self,
        account_id: str,
        execution_id: str,
        *,
        shared: JSONValue,
        next_node: str | None,
        results: Mapping[str, JSONValue],
    ) -> Checkpoint: ...

    async def get_checkpoint(self, account_id: str, execution_id: str) -> Checkpoint | None:
        """The latest checkpoint, or None if the run never saved one."""
        ...

    async def record_step(
        self,
        account_id: str,
        execution_id: str,
        events: Sequence[NewEvent],
        *,
        checkpoint: NewCheckpoint | None = None,
    ) -> builtins.list[ExecutionEvent]:
        """One step of a run in one durable write: append ``events`` (numbered as by
        ``append_events``) and, if given, save ``checkpoint``; both or neither. This is the
        runner's hot path (once per node), so backends make it their cheapest write.

        Saving a checkpoint is progress: it resets the execution's ``resume_attempts`` to 0."""
        ...

    # leases: who is running it -----------------------------------------------------------

    async def acquire_lease(
        self, account_id: str, execution_id: str, *, owner: str, ttl: timedelta
    ) -> Execution:
        """Take the lease if it is free, expired or already ``owner``'s; else ``Conflict``."""
        ...

    async def renew_lease(
        self, account_id: str, execution_id: str, *, owner: str, ttl: timedelta
    ) -> Execution:
        """Extend ``owner``'s lease; ``Conflict`` if someone else holds it or it is free."""
        ...

    async def release_lease(self, account_id: str, execution_id: str, *, owner: str) -> None:
        """Free the lease if ``owner`` holds it; releasing a lease one no longer holds is a
        no-op (it was stolen after expiry, the new owner keeps it)."""
        ...

    async def admin_claim_expired_leases(
        self,
        *,
        owner: str,
        ttl: timedelta,
        limit: int = 100,
        unleased_after: timedelta | None = None,
    ) -> builtins.list[Execution]:
        """Crash recovery: take over active (queued/running) executions, of any account,
        whose lease has expired, and those that never had a lease (or were released while
        active) and were created more than ``unleased_after`` ago (default: ``ttl``) — their
        creator died before handing them to an executor. Concurrent claimers never get the
        same execution. Each claim adds 1 to the execution's ``resume_attempts``.
        Child runs (``parent_id`` set) are never claimed: their parent resumes them."""
        ...


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


class AuditStore(Protocol):
    async def append(self, chain: str, entry: NewAuditEntry) -> AuditRecord:
        """Link ``entry`` after the chain's last record (appends to one chain are serialized,
        so the chain never forks)."""
        ...

    async def list(
        self, chain: str, *, after_seq: int = 0, limit: int = MAX_LIMIT
    ) -> builtins.list[AuditRecord]:
        """Records of one chain in ascending ``seq`` (feed them to ``verify_chain``)."""
        ...

    async def list_for_account(
        self,
        account_id: str,
        *,
        limit: int = DEFAULT_LIMIT,
        cursor: str | None = None,
        chain: str | None = None,
    ) -> Page[AuditRecord]:
        """Records about one account, newest first: from ``chain`` only, or from every
        chain when it is None."""
        ...

    async def chains(self) -> builtins.list[AuditChain]:
        """Every chain that has records or a recorded head, by name, with that head."""
        ...


class KVStore(Protocol):
    async def put(
        self,
        account_id: str,
        namespace: str,
        key: str,
        value: JSONValue,
        *,
        ttl: timedelta | None = None,
    ) -> KVEntry:
        """Create or replace; with ``ttl`` the entry vanishes after that long."""
        ...

    async def get(self, account_id: str, namespace: str, key: str) -> KVEntry:
        """``NotFound`` if missing or expired."""
        ...

    async def delete(self, account_id: str, namespace: str, key: str) -> bool:
        """True if a live entry was deleted."""
        ...

    async def list(
        self,
        account_id: str,
        namespace: str,
        *,
        prefix: str = "",
        where: Mapping[str, JSONValue] | None = None,
        limit: int = DEFAULT_LIMIT,
        cursor: str | None = None,
    ) -> Page[KVEntry]:
        """Live entries ordered by key; ``where`` keeps object values whose top-level fields
        equal every given value (``{"status": "open"}``)."""
        ...

    async def admin_purge_expired(self) -> int:
        """Physically delete expired entries of every account; returns how many."""
        ...


class Store(Protocol):
    """Every entity family behind one connection lifecycle."""

    @property
    def accounts(self) -> AccountStore: ...
    @property
    def tokens(self) -> TokenStore: ...
    @property
    def flows(self) -> FlowStore: ...
    @property
    def secrets(self) -> SecretStore: ...
    @property
    def executions(self) -> ExecutionStore: ...
    @property
    def webhooks(self) -> WebhookStore: ...
    @property
    def audit(self) -> AuditStore: ...
    @property
    def kv(self) -> KVStore: ...

    async def connect(self) -> None:
        """Open connections (and, for SQL, migrate); idempotent."""
        ...

    async def close(self) -> None: ...
