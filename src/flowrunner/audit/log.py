"""The audit log service: append security events to one hash chain, list them, verify them.

Design: every record goes to a single chain (``GLOBAL_CHAIN``). One chain gives a total order
of everything that happened and lets ``verify`` detect an edited, deleted or reordered record
anywhere with one pass; per-account views come from the store's ``list_for_account`` index.
Appends to one chain are serialized by the store; at the volumes of security events (logins,
token and secret changes) that is not a bottleneck.

``verify`` walks *every* chain the store holds, not only ours: a chain under any other name
was not written by this service, so it is reported (and never listed). Each chain's last
record is compared with the head the store recorded at the last append, so deleting the
newest records shows too where the store keeps a separate head (SQL). Readers see only our
chain, and only records whose hash matches their content; the rest of the proof is
``verify``'s. What a chain without a secret cannot prove: that nobody with write access to
the database rewrote it whole, head included. ``verify`` prints the head (seq and hash) so an
operator can anchor it elsewhere (a ticket, a log shipper) and compare later.
"""

from __future__ import annotations

import builtins
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from flowrunner.errors import InvalidInput
from flowrunner.storage.chain import GENESIS_HASH, hash_of, verify_chain
from flowrunner.storage.protocols import DEFAULT_LIMIT, MAX_LIMIT, Store
from flowrunner.storage.records import AuditChain, AuditRecord, JSONValue, NewAuditEntry, Page

GLOBAL_CHAIN = "global"
log = logging.getLogger("flowrunner.audit")


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """``problems`` name their chain; ``head_*`` is our chain's last verified record."""

    ok: bool
    checked: int
    problems: list[str] = field(default_factory=list)
    head_seq: int = 0
    head_hash: str = GENESIS_HASH
    chains: int = 0


@dataclass(frozen=True, slots=True)
class _Walk:
    checked: int
    last_seq: int
    last_hash: str
    problem: str | None


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
        chain oldest first, in chain order, which is the order ``verify`` checks. Only our
        chain, and only records whose hash matches their content (see the module doc)."""
        if account_id is not None:
            page = await self._store.audit.list_for_account(
                account_id, limit=limit, cursor=cursor, chain=self._chain
            )
            return Page(self._intact(page.items), page.next_cursor)
        after = _seq_cursor(cursor)
        limit = max(1, min(limit, MAX_LIMIT))
        items = await self._store.audit.list(self._chain, after_seq=after, limit=limit)
        next_cursor = str(items[-1].seq) if len(items) == limit else None
        return Page(self._intact(items), next_cursor)

    def _intact(self, records: Sequence[AuditRecord]) -> builtins.list[AuditRecord]:
        kept = [r for r in records if r.chain == self._chain and hash_of(r) == r.hash]
        if len(kept) < len(records):
            bad = [(r.chain, r.seq) for r in records if r not in kept]
            log.error("audit records %s fail their hash or are not of chain %r: left out of "
                      "listings; run `flowrunner audit verify`", bad, self._chain)  # fmt: skip
        return kept

    async def verify(self, *, batch: int = MAX_LIMIT) -> VerifyReport:
        """Walk every chain in the store in slices and compare its end with its recorded
        head. A chain stops at its first broken link (later links cannot be trusted once one
        is broken); the other chains are still checked."""
        chains = {c.chain: c for c in await self._store.audit.chains()}
        chains.setdefault(self._chain, AuditChain(self._chain, 0, GENESIS_HASH))
        problems: list[str] = []
        checked, head_seq, head_hash = 0, 0, GENESIS_HASH
        for name, chain in sorted(chains.items()):
            walk = await self._walk(name, batch)
            checked += walk.checked
            if name == self._chain:
                head_seq, head_hash = walk.last_seq, walk.last_hash
            else:
                problems.append(
                    f"chain {name!r}: not written by flowrunner (its one chain is "
                    f"{self._chain!r}); {walk.checked} record(s) under it are not shown"
                )
            if walk.problem is not None:
                problems.append(f"chain {name!r}: {walk.problem}")
            elif chain.head_seq is None:
                problems.append(f"chain {name!r}: has records but no recorded head")
            elif (chain.head_seq, chain.head_hash) != (walk.last_seq, walk.last_hash):
                problems.append(
                    f"chain {name!r}: ends at record {walk.last_seq} but its recorded head is "
                    f"record {chain.head_seq}: records were removed from its end"
                )
        return VerifyReport(not problems, checked, problems, head_seq, head_hash, len(chains))

    async def _walk(self, chain: str, batch: int) -> _Walk:
        start_hash, next_seq, checked = GENESIS_HASH, 1, 0
        while True:
            records = await self._store.audit.list(chain, after_seq=next_seq - 1, limit=batch)
            # list() filters by seq > after_seq, so a deleted record shows up as a gap in seq
            # and an edited one as a hash mismatch; verify_chain reports both.
            result = verify_chain(records, start_hash=start_hash, start_seq=next_seq)
            checked += result.checked
            if not result.ok:
                problem = f"record {result.first_bad_seq}: {result.reason}"
                return _Walk(checked, next_seq - 1, start_hash, problem)
            if records:
                start_hash, next_seq = records[-1].hash, records[-1].seq + 1
            if len(records) < batch:
                return _Walk(checked, next_seq - 1, start_hash, None)


def _seq_cursor(cursor: str | None) -> int:
    if cursor is None:
        return 0
    if not cursor.isdigit():
        raise InvalidInput("invalid pagination cursor", cursor=cursor)
    return int(cursor)
