"""The ``store`` node's key-value store for a run: the run's account's, and the local one.

On a server the runner binds the store's KV to the run's account (``AccountKV``) and hands
it to the run as the run-scoped value ``nodes.store.RUN_KV``, so no flow can read another
account's entries. ``flowrunner run`` (no server, no account) uses the
database the settings select (by default the embedded SQLite file in the data directory)
under the reserved account id ``local``, which no server account can have: local runs share
their entries with each other and never with a server's accounts. The database is opened on
the first ``store`` operation only, so flows without one never touch it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

from flowrunner.storage import Store
from flowrunner.storage.factory import StorageSettings, open_store
from flowrunner.storage.protocols import KVStore
from flowrunner.storage.records import JSONValue, KVEntry, Page

LOCAL_ACCOUNT = "local"


class AccountKV:
    """``KVStore`` with the account bound: what the ``store`` node sees."""

    __slots__ = ("_account", "_kv")

    def __init__(self, kv: KVStore, account_id: str) -> None:
        self._kv, self._account = kv, account_id

    async def put(
        self, namespace: str, key: str, value: Any, *, ttl: timedelta | None = None
    ) -> KVEntry:
        return await self._kv.put(self._account, namespace, key, value, ttl=ttl)

    async def get(self, namespace: str, key: str) -> KVEntry:
        return await self._kv.get(self._account, namespace, key)

    async def delete(self, namespace: str, key: str) -> bool:
        return await self._kv.delete(self._account, namespace, key)

    async def list(
        self, namespace: str, *, prefix: str = "", limit: int = 1000, cursor: str | None = None
    ) -> Page[KVEntry]:
        return await self._kv.list(
            self._account, namespace, prefix=prefix, limit=limit, cursor=cursor
        )

    async def increment(self, namespace: str, key: str, amount: int | float = 1) -> KVEntry:
        return await self._kv.increment(self._account, namespace, key, amount)

    async def append(self, namespace: str, key: str, value: JSONValue) -> KVEntry:
        return await self._kv.append(self._account, namespace, key, value)


class _LazyKV:
    """An ``AccountKV`` on a store opened at its first use (``flowrunner run``)."""

    def __init__(self, settings: StorageSettings) -> None:
        self._settings = settings
        self._lock = asyncio.Lock()
        self.store: Store | None = None

    async def _kv(self) -> AccountKV:
        async with self._lock:
            if self.store is None:
                self.store = await open_store(self._settings)
        return AccountKV(self.store.kv, LOCAL_ACCOUNT)

    async def put(
        self, namespace: str, key: str, value: Any, *, ttl: timedelta | None = None
    ) -> KVEntry:
        return await (await self._kv()).put(namespace, key, value, ttl=ttl)

    async def get(self, namespace: str, key: str) -> KVEntry:
        return await (await self._kv()).get(namespace, key)

    async def delete(self, namespace: str, key: str) -> bool:
        return await (await self._kv()).delete(namespace, key)

    async def list(
        self, namespace: str, *, prefix: str = "", limit: int = 1000, cursor: str | None = None
    ) -> Page[KVEntry]:
        return await (await self._kv()).list(namespace, prefix=prefix, limit=limit, cursor=cursor)

    async def increment(self, namespace: str, key: str, amount: int | float = 1) -> KVEntry:
        return await (await self._kv()).increment(namespace, key, amount)

    async def append(self, namespace: str, key: str, value: JSONValue) -> KVEntry:
        return await (await self._kv()).append(namespace, key, value)


@asynccontextmanager
async def local_kv(settings: StorageSettings) -> AsyncIterator[_LazyKV]:
    """The local store (see the module doc), to run flows with as ``scoped={RUN_KV: kv}``;
    closed at the end if a node opened it."""
    lazy = _LazyKV(settings)
    try:
        yield lazy
    finally:
        if lazy.store is not None:
            await lazy.store.close()
