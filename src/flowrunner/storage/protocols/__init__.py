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

from typing import Protocol

from flowrunner.storage.protocols.accounts import AccountStore, TokenStore
from flowrunner.storage.protocols.audit import AuditStore
from flowrunner.storage.protocols.executions import EndNotices, ExecutionStore
from flowrunner.storage.protocols.flows import FlowStore
from flowrunner.storage.protocols.kv import KVStore
from flowrunner.storage.protocols.limits import DEFAULT_LIMIT, MAX_LIMIT
from flowrunner.storage.protocols.migrations import Migrations, MigrationStatus
from flowrunner.storage.protocols.secrets import SecretStore
from flowrunner.storage.protocols.webhooks import WebhookStore


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


__all__ = [
    "DEFAULT_LIMIT",
    "MAX_LIMIT",
    "AccountStore",
    "AuditStore",
    "EndNotices",
    "ExecutionStore",
    "FlowStore",
    "KVStore",
    "MigrationStatus",
    "Migrations",
    "SecretStore",
    "Store",
    "TokenStore",
    "WebhookStore",
]
