"""The namespaced key-value store, with expiry checked at read time.

Items::

    KV#<account> SEP <namespace> / K#<key>    an entry   gsi3: KVEXPIRY / expires_at (if any)

An entry with a TTL carries ``expires_at`` (checked by every read, against the store's clock)
and ``ttl`` (epoch seconds, DynamoDB's own TTL attribute, so AWS eventually deletes it for
free). ``admin_purge_expired`` deletes what has expired now through the sparse ``gsi3``
partition, without scanning the table.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from flowrunner.errors import Conflict, NotFound, StorageError
from flowrunner.storage.dynamodb.client import ConditionFailed, Table
from flowrunner.storage.dynamodb.codec import (
    SEP,
    dump_json,
    load_json,
    opt_ts,
    parse_ts,
    ts,
)
from flowrunner.storage.dynamodb.due_queue import due_keys
from flowrunner.storage.dynamodb.expr import Expr
from flowrunner.storage.dynamodb.paging import SortRange, query_page
from flowrunner.storage.dynamodb.schema import TTL_ATTRIBUTE
from flowrunner.storage.kv_updates import appended, incremented
from flowrunner.storage.protocols import DEFAULT_LIMIT
from flowrunner.storage.records import Clock, JSONValue, KVEntry, Page

EXPIRY_QUEUE = "KVEXPIRY"
PUT_ATTEMPTS = 20
# Compare-and-set attempts of one increment/append: each round one contender wins, so this
# bounds how many writers of the same key can race before one of them gives up.
UPDATE_ATTEMPTS = 64


def kv_pk(account_id: str, namespace: str) -> str:
    return f"KV#{account_id}{SEP}{namespace}"


def _entry(f: dict[str, Any]) -> KVEntry:
    return KVEntry(
        f["account_id"], f["namespace"], f["key"], load_json(f["value"]),
        parse_ts(f["created_at"]), parse_ts(f["updated_at"]), opt_ts(f.get("expires_at")),
    )  # fmt: skip


def _live(f: dict[str, Any], now: datetime) -> bool:
    return "expires_at" not in f or f["expires_at"] > ts(now)


def matches(value: JSONValue, where: Mapping[str, JSONValue] | None) -> bool:
    if not where:
        return True
    return isinstance(value, dict) and all(k in value and value[k] == v for k, v in where.items())


class DynamoKV:
    def __init__(self, table: Table, clock: Clock) -> None:
        self._t = table
        self._clock = clock

    def _body(
        self,
        account_id: str,
        namespace: str,
        key: str,
        value: JSONValue,
        now: datetime,
        ttl: timedelta | None,
    ) -> dict[str, Any]:
        expires = now + ttl if ttl is not None else None
        return {
            "account_id": account_id, "namespace": namespace, "key": key,
            "value": dump_json(value), "updated_at": ts(now),
            "expires_at": ts(expires) if expires else None,
            TTL_ATTRIBUTE: int(expires.timestamp()) + 1 if expires else None,
            "gsi3pk": EXPIRY_QUEUE if expires else None,
            "gsi3sk": ts(expires) if expires else None,
        }  # fmt: skip

    async def _put_fresh(self, pk: str, sk: str, body: dict[str, Any], now: datetime) -> KVEntry:
        """Write a whole new entry where none is live; ``ConditionFailed`` if one is."""
        fresh = Expr()
        item = {"pk": pk, "sk": sk, **body, "created_at": ts(now)}
        dead = f"attribute_not_exists(pk) OR {fresh.le('expires_at', ts(now))}"
        await self._t.put(item, condition=dead, expr=fresh)
        return _entry({k: v for k, v in item.items() if v is not None})

    async def put(
        self,
        account_id: str,
        namespace: str,
        key: str,
        value: JSONValue,
        *,
        ttl: timedelta | None = None,
    ) -> KVEntry:
        now = self._clock()
        body = self._body(account_id, namespace, key, value, now, ttl)
        pk, sk = kv_pk(account_id, namespace), f"K#{key}"
        for _ in range(PUT_ATTEMPTS):
            # A live entry keeps its created_at; a missing or expired one starts afresh.
            # Two conditional writes instead of a read: each is atomic on its own.
            replace = Expr()
            for name, field in body.items():
                replace.set(name, field)
            live = f"attribute_exists(pk) AND ({replace.missing('expires_at')} OR " + (
                f"{replace.gt('expires_at', ts(now))})"
            )
            try:
                return _entry(await self._t.update(pk, sk, replace, condition=live))
            except ConditionFailed:
                pass
            try:
                return await self._put_fresh(pk, sk, body, now)
            except ConditionFailed:
                continue  # someone else wrote it in between: try the live path again
        raise StorageError("KV entry is being rewritten too often; retry", key=key)

    async def put_new(
        self,
        account_id: str,
        namespace: str,
        key: str,
        value: JSONValue,
        *,
        ttl: timedelta | None = None,
    ) -> KVEntry:
        now = self._clock()
        body = self._body(account_id, namespace, key, value, now, ttl)
        try:
            return await self._put_fresh(kv_pk(account_id, namespace), f"K#{key}", body, now)
        except ConditionFailed as exc:
            raise Conflict("key exists", namespace=namespace, key=key) from exc

    async def increment(
        self, account_id: str, namespace: str, key: str, amount: int | float = 1
    ) -> KVEntry:
        return await self._update(
            account_id, namespace, key, lambda old, live: incremented(key, old, amount, exists=live)
        )

    async def append(self, account_id: str, namespace: str, key: str, value: JSONValue) -> KVEntry:
        return await self._update(
            account_id, namespace, key, lambda old, live: appended(key, old, value, exists=live)
        )

    async def _update(
        self,
        account_id: str,
        namespace: str,
        key: str,
        compute: Callable[[JSONValue, bool], JSONValue],
    ) -> KVEntry:
        """Read, compute, then write only if the entry is still as read (compare-and-set on
        ``updated_at`` and the value); a lost race reads again."""
        pk, sk = kv_pk(account_id, namespace), f"K#{key}"
        for attempt in range(UPDATE_ATTEMPTS):
            now = self._clock()
            old = await self._t.get(pk, sk)
            live = old is not None and _live(old, now)
            value = dump_json(compute(load_json(old["value"]) if old and live else None, live))
            expr = Expr()
            try:
                if old is not None and live:
                    expr.set("value", value).set("updated_at", ts(now))
                    same = f"{expr.eq('updated_at', old['updated_at'])} AND " + expr.eq(
                        "value", old["value"]
                    )
                    return _entry(await self._t.update(pk, sk, expr, condition=same))
                item = {
                    "pk": pk, "sk": sk, "account_id": account_id, "namespace": namespace,
                    "key": key, "value": value, "created_at": ts(now), "updated_at": ts(now),
                }  # fmt: skip
                # Missing, or the expired entry as read: replaced whole (its TTL goes too).
                unchanged = (
                    expr.missing() if old is None else expr.eq("updated_at", old["updated_at"])
                )
                await self._t.put(item, condition=unchanged, expr=expr)
                return _entry(item)
            except ConditionFailed:
                # Another writer got there first: back off a little (jittered) and redo.
                await asyncio.sleep(random.uniform(0, 0.002 * (attempt + 1)))
        raise StorageError("KV entry is being updated too often; retry", key=key)

    async def get(self, account_id: str, namespace: str, key: str) -> KVEntry:
        fields = await self._t.get(kv_pk(account_id, namespace), f"K#{key}")
        if fields is None or not _live(fields, self._clock()):
            raise NotFound("key not found", namespace=namespace, key=key)
        return _entry(fields)

    async def delete(self, account_id: str, namespace: str, key: str) -> bool:
        old = await self._t.delete(kv_pk(account_id, namespace), f"K#{key}")
        return old is not None and _live(old, self._clock())

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
        now = self._clock()
        return await query_page(
            self._t, partition=kv_pk(account_id, namespace), build=_entry, limit=limit,
            cursor=cursor, sort=SortRange(prefix=f"K#{prefix}"), newest_first=False,
            keep=lambda e: (e.expires_at is None or e.expires_at > now) and matches(e.value, where),
        )  # fmt: skip

    async def admin_purge_expired(self) -> int:
        now = ts(self._clock())
        purged = 0
        async for pk, sk in due_keys(self._t, EXPIRY_QUEUE, now):
            expr = Expr()
            try:
                # Conditional: an entry rewritten since the index was read is kept.
                await self._t.delete(pk, sk, condition=expr.le("expires_at", now), expr=expr)
                purged += 1
            except ConditionFailed:
                pass
        return purged
