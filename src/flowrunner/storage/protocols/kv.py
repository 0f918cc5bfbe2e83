"""The per-account key-value store.

The rules every backend follows are in ``flowrunner.storage.protocols``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Protocol

from flowrunner.storage.protocols.limits import DEFAULT_LIMIT
from flowrunner.storage.records import (
    JSONValue,
    KVEntry,
    Page,
)


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

    async def put_new(
        self,
        account_id: str,
        namespace: str,
        key: str,
        value: JSONValue,
        *,
        ttl: timedelta | None = None,
    ) -> KVEntry:
        """Create only: ``Conflict`` if a live entry holds the key (an expired one is
        replaced). Of concurrent calls for one key, exactly one succeeds."""
        ...

    async def get(self, account_id: str, namespace: str, key: str) -> KVEntry:
        """``NotFound`` if missing or expired."""
        ...

    async def increment(
        self, account_id: str, namespace: str, key: str, amount: int | float = 1
    ) -> KVEntry:
        """Atomically add ``amount`` to a number: concurrent calls all count. A missing or
        expired entry counts as 0 (and is created without TTL); a live one keeps its TTL.
        ``Conflict`` if the value is not a number."""
        ...

    async def append(self, account_id: str, namespace: str, key: str, value: JSONValue) -> KVEntry:
        """Atomically add ``value`` at the end of a list: concurrent calls all land. A missing
        or expired entry starts a new list; a live one keeps its TTL. ``Conflict`` if the
        value is not a list or already holds ``MAX_APPEND_ITEMS`` items."""
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
