"""The audit log service: append security events to one hash chain, list them, verify them.

Design: every record goes to a single chain (``GLOBAL_CHAIN``). One chain gives a total order
of everything that happened and lets ``verify`` detect an edited, deleted or reordered record
anywhere with one pass; per-account views come from the store's ``list_for_account`` index.
Appends to one chain are serialized by the store; at the volumes of security events (logins,
token and secret changes) that is not a bottleneck.

What the chain cannot prove on its own: that the newest records were not truncated (the last
record links to nothing after it). ``verify`` reports the head (seq and hash) so an operator
can anchor it elsewhere (a ticket, a log shipper) and compare later.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from flowrunner.errors import InvalidInput
from flowrunner.storage.chain import GENESIS_HASH, verify_chain
from flowrunner.storage.protocols import DEFAULT_LIMIT, MAX_LIMIT, Store
from flowrunner.storage.records import AuditRecord, JSONValue, NewAuditEntry, Page

GLOBAL_CHAIN = "global"


@dataclass(frozen=True, slots=True)
class VerifyReport:
    ok: bool
    checked: int
    problems: list[str] = field(default_factory=list)
    head_seq: int = 0
    head_hash: str = GENESIS_HASH


class AuditLog:
    """Append-only, hash-chained audit records over ``store.audit``."""

    def __init__(self, store: Store, *, chain: str = GLOBAL_CHAIN) -> None:
        self._store = store
        self._chain = chain

    async def record(
        self,
        action: str,
        *,
        account_id: str | None,
        actor_id: str | None,
        target: str | None,
        outcome: str = "ok",
        details: Mapping[str, JSONValue] | None = None,
    ) -> AuditRecord:
        """Append one event. ``account_id`` is whose record it is (who may read it),
        ``actor_id`` who did it (an admin acting on another account, or None for the system).
        """
        data: dict[str, JSONValue] = {"outcome": outcome}
        if details:
            data.update(details)
        entry = NewAuditEntry(
            action=action, account_id=account_id, actor=actor_id, target=target, data=data
        )
        return await self._store.audit.append(self._chain, entry)

    async def list(
        self,
        account_id: str | None,
        *,
        cursor: str | None = None,
        limit: int = DEFAULT_LIMIT,
    ) -> Page[AuditRecord]:
        """Records about ``account_id``, newest first; ``None`` (admins) lists the whole
        chain oldest first, in chain order, which is the order ``verify`` checks."""
        if account_id is not None:
            return await self._store.audit.list_for_account(account_id, limit=limit, cursor=cursor)
        after = _seq_cursor(cursor)
        limit = max(1, min(limit, MAX_LIMIT))
        items = await self._store.audit.list(self._chain, after_seq=after, limit=limit)
        next_cursor = str(items[-1].seq) if len(items) == limit else None
        return Page(items, next_cursor)

    async def verify(self, *, batch: int = MAX_LIMIT) -> VerifyReport:
        """Walk the whole chain in slices; report the first broken link (later links cannot
        be trusted once one is broken, so checking stops there)."""
        start_hash, next_seq, checked = GENESIS_HASH, 1, 0
        while True:
            records = await self._store.audit.list(self._chain, after_seq=next_seq - 1, limit=batch)
            # list() filters by seq > after_seq, so a deleted record shows up as a gap in seq
            # and an edited one as a hash mismatch; verify_chain reports both.
            result = verify_chain(records, start_hash=start_hash, start_seq=next_seq)
            checked += result.checked
            if not result.ok:
                problem = f"record {result.first_bad_seq}: {result.reason}"
                return VerifyReport(False, checked, [problem], next_seq - 1, start_hash)
            if not records:
                return VerifyReport(True, checked, [], next_seq - 1, start_hash)
            start_hash, next_seq = records[-1].hash, records[-1].seq + 1
            if len(records) < batch:
                return VerifyReport(True, checked, [], next_seq - 1, start_hash)


def _seq_cursor(cursor: str | None) -> int:
    if cursor is None:
        return 0
    if not cursor.isdigit():
        raise InvalidInput("invalid pagination cursor", cursor=cursor)
    return int(cursor)
