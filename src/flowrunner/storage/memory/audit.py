"""The hash-chained audit log in memory."""

from __future__ import annotations

import builtins
from datetime import datetime

from flowrunner.storage.chain import GENESIS_HASH, link
from flowrunner.storage.memory.state import MemoryState, json_copy
from flowrunner.storage.pagination import (
    clamp_limit,
    decode_cursor,
    encode_cursor,
)
from flowrunner.storage.protocols import DEFAULT_LIMIT, MAX_LIMIT
from flowrunner.storage.records import AuditChain, AuditRecord, NewAuditEntry, Page


class MemoryAudit:
    def __init__(self, state: MemoryState) -> None:
        self._s = state

    async def append(self, chain: str, entry: NewAuditEntry) -> AuditRecord:
        async with self._s.lock:
            records = self._s.audit.setdefault(chain, [])
            prev_hash = records[-1].hash if records else GENESIS_HASH
            record = link(
                chain,
                len(records) + 1,
                entry,
                self._s.clock(),
                prev_hash,
                json_copy(dict(entry.data)),
            )
            records.append(record)
            return record

    async def list(
        self, chain: str, *, after_seq: int = 0, limit: int = MAX_LIMIT
    ) -> builtins.list[AuditRecord]:
        records = self._s.audit.get(chain, [])
        start = max(after_seq, 0)
        return records[start : start + clamp_limit(limit)]

    async def list_for_account(
        self,
        account_id: str,
        *,
        limit: int = DEFAULT_LIMIT,
        cursor: str | None = None,
        chain: str | None = None,
    ) -> Page[AuditRecord]:
        rows = sorted(
            (
                r
                for name, rs in self._s.audit.items()
                if chain is None or name == chain
                for r in rs
                if r.account_id == account_id
            ),
            key=_order,
            reverse=True,
        )
        if cursor is not None:
            when, at_chain, seq = decode_cursor(cursor, 3)
            after = (datetime.fromisoformat(str(when)), str(at_chain), int(seq))
            rows = [r for r in rows if _order(r) < after]
        limit = clamp_limit(limit)
        items = rows[:limit]
        more = len(rows) > limit
        return Page(items, encode_cursor(*_order(items[-1])) if more else None)

    async def chains(self) -> builtins.list[AuditChain]:
        # No separate head here: the last record is the head.
        return [
            AuditChain(name, rs[-1].seq, rs[-1].hash)
            for name, rs in sorted(self._s.audit.items())
            if rs
        ]


def _order(r: AuditRecord) -> tuple[datetime, str, int]:
    return (r.created_at, r.chain, r.seq)
