"""The hash-chained audit log.

Items::

    AUDIT#<chain> / SEQ#<seq:012d>     one record    gsi1: ACCOUNT#<a>#AUDIT /
                                                           created SEP chain SEP seq

An append reads the chain's last record (strongly consistent), links the new one to its hash
and puts it as ``seq + 1`` on condition that key does not exist. Two appenders that read the
same last record target the same key and only one wins, so the chain never forks; the loser
re-reads and links after the winner. Appenders of one process queue on a local lock first.
"""

from __future__ import annotations

import asyncio
import builtins
import random
from typing import Any

from flowrunner.errors import Conflict
from flowrunner.storage.chain import GENESIS_HASH, record_hash
from flowrunner.storage.dynamodb.accounts import NEW
from flowrunner.storage.dynamodb.client import ConditionFailed, Table
from flowrunner.storage.dynamodb.codec import (
    SEP,
    dump_json,
    from_item,
    load_json,
    parse_ts,
    seq_key,
    ts,
)
from flowrunner.storage.dynamodb.locks import KeyedLocks
from flowrunner.storage.dynamodb.paging import query_page, read_range
from flowrunner.storage.pagination import clamp_limit
from flowrunner.storage.protocols import DEFAULT_LIMIT, MAX_LIMIT
from flowrunner.storage.records import AuditChain, AuditRecord, Clock, NewAuditEntry, Page

APPEND_ATTEMPTS = 200


def _record(f: dict[str, Any]) -> AuditRecord:
    return AuditRecord(
        f["chain"], f["seq"], f["action"], f.get("account_id"), f.get("actor"), f.get("target"),
        load_json(f["data"]), parse_ts(f["created_at"]), f["prev_hash"], f["hash"],
    )  # fmt: skip


class DynamoAudit:
    def __init__(self, table: Table, clock: Clock) -> None:
        self._t = table
        self._clock = clock
        self._appending = KeyedLocks()

    async def append(self, chain: str, entry: NewAuditEntry) -> AuditRecord:
        data_json = dump_json(dict(entry.data))
        pk = f"AUDIT#{chain}"
        async with self._appending.hold(chain):
            for attempt in range(APPEND_ATTEMPTS):
                last = await self._last(pk)
                seq = last["seq"] + 1 if last else 1
                prev_hash = last["hash"] if last else GENESIS_HASH
                record = self._link(chain, seq, entry, data_json, prev_hash)
                item = {
                    "pk": pk, "sk": seq_key("SEQ#", seq), "chain": chain, "seq": seq,
                    "action": entry.action, "account_id": entry.account_id,
                    "actor": entry.actor, "target": entry.target, "data": data_json,
                    "created_at": ts(record.created_at), "prev_hash": prev_hash,
                    "hash": record.hash,
                }  # fmt: skip
                if entry.account_id is not None:
                    item["gsi1pk"] = f"ACCOUNT#{entry.account_id}#AUDIT"
                    item["gsi1sk"] = f"{ts(record.created_at)}{SEP}{chain}{SEP}{seq:012d}"
                try:
                    await self._t.put(item, condition=NEW)
                except ConditionFailed:
                    await asyncio.sleep(random.uniform(0, min(0.05, 0.001 * 2 ** min(attempt, 6))))
                    continue
                return record
        raise Conflict("too many concurrent audit writers; retry", chain=chain)

    def _link(
        self, chain: str, seq: int, entry: NewAuditEntry, data_json: str, prev_hash: str
    ) -> AuditRecord:
        now = self._clock()
        digest = record_hash(
            chain=chain, seq=seq, action=entry.action, account_id=entry.account_id,
            actor=entry.actor, target=entry.target, data=load_json(data_json), created_at=now,
            prev_hash=prev_hash,
        )  # fmt: skip
        return AuditRecord(
            chain, seq, entry.action, entry.account_id, entry.actor, entry.target,
            load_json(data_json), now, prev_hash, digest,
        )  # fmt: skip

    async def _last(self, pk: str) -> dict[str, Any] | None:
        response = await self._t.query(
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": pk}},
            ScanIndexForward=False,
            ConsistentRead=True,
            Limit=1,
        )
        items = response.get("Items", [])
        return from_item(items[0]) if items else None

    async def list(
        self, chain: str, *, after_seq: int = 0, limit: int = MAX_LIMIT
    ) -> builtins.list[AuditRecord]:
        rows = await read_range(
            self._t, f"AUDIT#{chain}", seq_key("SEQ#", max(after_seq, 0) + 1),
            seq_key("SEQ#", 10**12 - 1), clamp_limit(limit),
        )  # fmt: skip
        return [_record(f) for f in rows]

    async def list_for_account(
        self,
        account_id: str,
        *,
        limit: int = DEFAULT_LIMIT,
        cursor: str | None = None,
        chain: str | None = None,
    ) -> Page[AuditRecord]:
        return await query_page(
            self._t, index="gsi1", partition=f"ACCOUNT#{account_id}#AUDIT", build=_record,
            limit=limit, cursor=cursor,
            keep=None if chain is None else (lambda r: r.chain == chain),
        )  # fmt: skip

    async def chains(self) -> builtins.list[AuditChain]:
        """A scan of the table for chain partitions (a verification is rare and reads every
        record anyway); each chain's head is its last record, as there is no separate one."""
        names: set[str] = set()
        request: dict[str, Any] = {
            "FilterExpression": "begins_with(pk, :audit)",
            "ExpressionAttributeValues": {":audit": {"S": "AUDIT#"}},
            "ProjectionExpression": "pk",
        }
        while True:
            response = await self._t.scan(**request)
            names.update(from_item(item)["pk"].removeprefix("AUDIT#") for item in response["Items"])
            if "LastEvaluatedKey" not in response:
                break
            request["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        found = []
        for name in sorted(names):
            last = await self._last(f"AUDIT#{name}")
            if last is not None:
                found.append(AuditChain(name, last["seq"], last["hash"]))
        return found
