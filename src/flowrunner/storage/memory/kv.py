"""The namespaced key-value store (for the ``store`` node) in memory."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta

from flowrunner.errors import Conflict, NotFound
from flowrunner.storage.kv_updates import appended, incremented
from flowrunner.storage.memory.state import MemoryState, json_copy, page_by_name
from flowrunner.storage.protocols import DEFAULT_LIMIT
from flowrunner.storage.query import matches
from flowrunner.storage.records import JSONValue, KVEntry, Page


class MemoryKV:
    def __init__(self, state: MemoryState) -> None:
        self._s = state

    async def put(
        self,
        account_id: str,
        namespace: str,
        key: str,
        value: JSONValue,
        *,
        ttl: timedelta | None = None,
    ) -> KVEntry:
        async with self._s.lock:
            now = self._s.clock()
            old = self._s.kv.get((account_id, namespace, key))
            created = old.created_at if old and not self._expired(old) else now
            entry = KVEntry(
                account_id,
                namespace,
                key,
                json_copy(value),
                created,
                now,
                now + ttl if ttl is not None else None,
            )
            self._s.kv[(account_id, namespace, key)] = entry
            return entry

    async def put_new(
        self,
        account_id: str,
        namespace: str,
        key: str,
        value: JSONValue,
        *,
        ttl: timedelta | None = None,
    ) -> KVEntry:
        async with self._s.lock:
            if self._live(account_id, namespace, key) is not None:
                raise Conflict("key exists", namespace=namespace, key=key)
            now = self._s.clock()
            expires = now + ttl if ttl is not None else None
            entry = KVEntry(account_id, namespace, key, json_copy(value), now, now, expires)
            self._s.kv[(account_id, namespace, key)] = entry
            return entry

    async def get(self, account_id: str, namespace: str, key: str) -> KVEntry:
        entry = self._s.kv.get((account_id, namespace, key))
        if entry is None or self._expired(entry):
            raise NotFound("key not found", namespace=namespace, key=key)
        return entry

    async def increment(
        self, account_id: str, namespace: str, key: str, amount: int | float = 1
    ) -> KVEntry:
        async with self._s.lock:
            old = self._live(account_id, namespace, key)
            value = incremented(key, old.value if old else None, amount, exists=old is not None)
            return self._replace(account_id, namespace, key, old, value)

    async def append(self, account_id: str, namespace: str, key: str, value: JSONValue) -> KVEntry:
        async with self._s.lock:
            old = self._live(account_id, namespace, key)
            items = appended(
                key, old.value if old else None, json_copy(value), exists=old is not None
            )
            return self._replace(account_id, namespace, key, old, items)

    def _live(self, account_id: str, namespace: str, key: str) -> KVEntry | None:
        entry = self._s.kv.get((account_id, namespace, key))
        return None if entry is None or self._expired(entry) else entry

    def _replace(
        self, account_id: str, namespace: str, key: str, old: KVEntry | None, value: JSONValue
    ) -> KVEntry:
        """Store ``value`` in place of the live entry ``old`` (keeping its TTL), or anew."""
        now = self._s.clock()
        entry = KVEntry(
            account_id,
            namespace,
            key,
            value,
            old.created_at if old else now,
            now,
            old.expires_at if old else None,
        )
        self._s.kv[(account_id, namespace, key)] = entry
        return entry

    async def delete(self, account_id: str, namespace: str, key: str) -> bool:
        async with self._s.lock:
            entry = self._s.kv.pop((account_id, namespace, key), None)
            return entry is not None and not self._expired(entry)

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
        rows = [
            e
            for (acc, ns, k), e in self._s.kv.items()
            if acc == account_id
            and ns == namespace
            and k.startswith(prefix)
            and not self._expired(e)
            and matches(e.value, where)
        ]
        return page_by_name(rows, limit=limit, cursor=cursor, key=lambda e: e.key)

    async def admin_purge_expired(self) -> int:
        async with self._s.lock:
            dead = [k for k, e in self._s.kv.items() if self._expired(e)]
            for k in dead:
                del self._s.kv[k]
            return len(dead)

    def _expired(self, entry: KVEntry) -> bool:
        return entry.expires_at is not None and entry.expires_at <= self._s.clock()
