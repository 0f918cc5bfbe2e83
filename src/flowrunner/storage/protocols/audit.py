"""The hash-chained audit log.

The rules every backend follows are in ``flowrunner.storage.protocols``.
"""

from __future__ import annotations

import builtins
from typing import Protocol

from flowrunner.storage.protocols.limits import DEFAULT_LIMIT, MAX_LIMIT
from flowrunner.storage.records import (
    AuditChain,
    AuditRecord,
    NewAuditEntry,
    Page,
)


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
