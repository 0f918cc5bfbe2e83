"""The vault's encrypted secret records.

The rules every backend follows are in ``flowrunner.storage.protocols``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from flowrunner.storage.protocols.limits import DEFAULT_LIMIT
from flowrunner.storage.records import (
    JSONValue,
    Page,
    Secret,
)


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
