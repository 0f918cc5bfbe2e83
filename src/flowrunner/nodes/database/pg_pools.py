"""Connection pools of the ``postgres`` node: one per (account, DSN), bounded and fair.

The original kept one process-global connection whose first caller's settings won for every
later node. Here each DSN gets its own pool, and pools are bounded three ways:

- connections: at most ``POOL_SIZE`` per pool; idle ones close after ``IDLE_SECONDS``;
- pools: at most ``MAX_POOLS`` in a process, and ``MAX_POOLS_PER_ACCOUNT`` per account, so
  one account naming many databases cannot take every slot: past a bound the least recently
  used idle pool (the account's own first) is closed;
- a run waits at most its ``connect_timeout`` for a connection.

The registry is per event loop (asyncpg connections belong to the loop that opened them).
"""

from __future__ import annotations

import asyncio
import json
import weakref
from collections import OrderedDict

import asyncpg

POOL_SIZE = 5
# The postgres node's default statement_timeout, set on every connection when it opens: a
# node with the default then needs no SET round trip of its own.
DEFAULT_STATEMENT_TIMEOUT_MS = 30_000
IDLE_SECONDS = 60.0
MAX_POOLS = 32
MAX_POOLS_PER_ACCOUNT = 4


async def _init(conn: asyncpg.Connection) -> None:
    # json/jsonb as JSON values both ways, not text.
    for name in ("json", "jsonb"):
        await conn.set_type_codec(name, encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


class PgPools:
    def __init__(self) -> None:
        self._pools: OrderedDict[tuple[str, str], asyncpg.Pool] = OrderedDict()
        self._lock = asyncio.Lock()
        # Tables the key-value operations created (or found) per pool: created once.
        self.tables: dict[tuple[str, str], set[str]] = {}

    async def get(self, account: str, dsn: str, connect_timeout: float) -> asyncpg.Pool:
        key = (account, dsn)
        async with self._lock:
            pool = self._pools.get(key)
            if pool is not None and not pool._closed:
                self._pools.move_to_end(key)
                return pool
            await self._make_room(account)
            pool = await asyncpg.create_pool(
                dsn,
                min_size=0,
                max_size=POOL_SIZE,
                max_inactive_connection_lifetime=IDLE_SECONDS,
                timeout=connect_timeout,
                init=_init,
                server_settings={"statement_timeout": str(DEFAULT_STATEMENT_TIMEOUT_MS)},
            )
            self._pools[key] = pool
            self.tables.pop(key, None)
            return pool

    async def _make_room(self, account: str) -> None:
        mine = [k for k in self._pools if k[0] == account]
        if len(mine) >= MAX_POOLS_PER_ACCOUNT:
            await self._close(mine[0])
        elif len(self._pools) >= MAX_POOLS:
            await self._close(next(iter(self._pools)))

    async def _close(self, key: tuple[str, str]) -> None:
        pool = self._pools.pop(key)
        self.tables.pop(key, None)
        # Lets queries in flight finish; a pool evicted while busy is closed when they end.
        await pool.close()

    async def close(self) -> None:
        async with self._lock:
            for key in list(self._pools):
                await self._close(key)

    def __len__(self) -> int:
        return len(self._pools)


_REGISTRIES: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, PgPools] = (
    weakref.WeakKeyDictionary()
)


def pools() -> PgPools:
    """The running loop's pool registry."""
    loop = asyncio.get_running_loop()
    registry = _REGISTRIES.get(loop)
    if registry is None:
        registry = _REGISTRIES[loop] = PgPools()
    return registry


async def close_pools() -> None:
    """Close every pool of the running loop (at shutdown, and between tests)."""
    registry = _REGISTRIES.pop(asyncio.get_running_loop(), None)
    if registry is not None:
        await registry.close()


def describe(dsn: str) -> str:
    """``host:port/dbname`` of a DSN, for messages (never the password)."""
    try:
        from urllib.parse import urlsplit

        parts = urlsplit(dsn)
        where = f"{parts.hostname or 'localhost'}:{parts.port or 5432}"
        return where + (parts.path if parts.path not in ("", "/") else "")
    except ValueError:
        return "the configured server"
