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
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import asyncpg

POOL_SIZE = 5
# The postgres node's default statement_timeout, set on every connection when it opens: a
# node with the default then needs no SET round trip of its own.
DEFAULT_STATEMENT_TIMEOUT_MS = 30_000
IDLE_SECONDS = 60.0
MAX_POOLS = 32
MAX_POOLS_PER_ACCOUNT = 4
# A ceiling for opening one connection; a node's own connect_timeout bounds its wait.
MAX_CONNECT_SECONDS = 60.0


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

    async def get(self, account: str, dsn: str) -> asyncpg.Pool:
        """The pool of ``dsn`` for ``account``, made when missing. Connecting is bounded by
        each caller's own wait (``pool.acquire(timeout=...)``), not by the pool's maker."""
        key = (account, dsn)
        evicted: asyncpg.Pool | None = None
        async with self._lock:
            pool = self._pools.get(key)
            if pool is not None and not pool._closed:
                self._pools.move_to_end(key)
                return pool
            evicted = self._make_room(account)
            import asyncpg

            pool = asyncpg.create_pool(
                dsn,
                min_size=0,  # no connection until a node asks: creating the pool is instant
                max_size=POOL_SIZE,
                max_inactive_connection_lifetime=IDLE_SECONDS,
                timeout=MAX_CONNECT_SECONDS,
                init=_init,
                server_settings={"statement_timeout": str(DEFAULT_STATEMENT_TIMEOUT_MS)},
            )
            await pool
            self._pools[key] = pool
            self.tables[key] = set()
        if evicted is not None:
            # Outside the lock: it waits for queries in flight in the evicted pool to finish,
            # and no other account's node may wait for that.
            await evicted.close()
        return pool

    def _make_room(self, account: str) -> asyncpg.Pool | None:
        """Take the pool to close for a new one of ``account`` out of the registry."""
        mine = [k for k in self._pools if k[0] == account]
        if len(mine) >= MAX_POOLS_PER_ACCOUNT:
            return self._take(mine[0])
        if len(self._pools) >= MAX_POOLS:
            return self._take(next(iter(self._pools)))
        return None

    def _take(self, key: tuple[str, str]) -> asyncpg.Pool:
        self.tables.pop(key, None)
        return self._pools.pop(key)

    async def close(self) -> None:
        async with self._lock:
            taken = [self._take(key) for key in list(self._pools)]
        for pool in taken:
            await pool.close()

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
