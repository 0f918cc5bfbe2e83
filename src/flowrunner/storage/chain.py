"""The audit hash chain: how a record's hash is computed, and how a chain is verified.

Every backend links records the same way, so a chain written by one can be verified by any
code holding the records::

    hash = sha256(canonical_json(content) + prev_hash)

where ``content`` is every field of the record except the two hashes, and canonical JSON has
sorted keys, no whitespace and ISO-8601 UTC timestamps. Changing any field of any record, or
removing or reordering records, breaks a link that ``verify_chain`` reports.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from flowrunner.storage.records import AuditRecord, JSONValue, NewAuditEntry

GENESIS_HASH = "0" * 64


def canonical_json(value: JSONValue) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def record_hash(
    *,
    chain: str,
    seq: int,
    action: str,
    account_id: str | None,
    actor: str | None,
    target: str | None,
    data: Mapping[str, JSONValue],
    created_at: datetime,
    prev_hash: str,
) -> str:
    content = {
        "chain": chain,
        "seq": seq,
        "action": action,
        "account_id": account_id,
        "actor": actor,
        "target": target,
        "data": dict(data),
        "created_at": created_at.astimezone(UTC).isoformat(),
    }
    return hashlib.sha256((canonical_json(content) + prev_hash).encode()).hexdigest()


def link(
    chain: str,
    seq: int,
    entry: NewAuditEntry,
    created_at: datetime,
    prev_hash: str,
    data: Mapping[str, JSONValue],
) -> AuditRecord:
    """The record that appends ``entry`` as number ``seq`` after a record hashed ``prev_hash``.

    ``data`` is the entry's data as the backend will store it (a JSON round trip), so the hash
    covers exactly what a reader gets back.
    """
    digest = record_hash(
        chain=chain,
        seq=seq,
        action=entry.action,
        account_id=entry.account_id,
        actor=entry.actor,
        target=entry.target,
        data=data,
        created_at=created_at,
        prev_hash=prev_hash,
    )
    return AuditRecord(
        chain, seq, entry.action, entry.account_id, entry.actor, entry.target, data,
        created_at, prev_hash, digest,
    )  # fmt: skip


def hash_of(record: AuditRecord) -> str:
    """The hash ``record`` should carry given its content and ``prev_hash``."""
    return record_hash(
        chain=record.chain,
        seq=record.seq,
        action=record.action,
        account_id=record.account_id,
        actor=record.actor,
        target=record.target,
        data=record.data,
        created_at=record.created_at,
        prev_hash=record.prev_hash,
    )


@dataclass(frozen=True, slots=True)
class ChainCheck:
    ok: bool
    checked: int
    first_bad_seq: int | None = None
    reason: str | None = None


def verify_chain(
    records: Iterable[AuditRecord], *, start_hash: str = GENESIS_HASH, start_seq: int = 1
) -> ChainCheck:
    """Check records given in ascending ``seq`` order, starting at ``start_seq``.

    To verify a chain in slices, pass the last verified record's hash and ``seq + 1``.
    """
    expected_prev, expected_seq, checked = start_hash, start_seq, 0
    for record in records:
        if record.seq != expected_seq:
            return ChainCheck(False, checked, record.seq, f"expected seq {expected_seq}")
        if record.prev_hash != expected_prev:
            return ChainCheck(False, checked, record.seq, "prev_hash does not match")
        if hash_of(record) != record.hash:
            return ChainCheck(False, checked, record.seq, "content does not match its hash")
        expected_prev, expected_seq, checked = record.hash, record.seq + 1, checked + 1
    return ChainCheck(True, checked)
