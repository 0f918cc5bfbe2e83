"""The original's key-value operations of the ``postgres`` node, on a table of its own::

    CREATE TABLE IF NOT EXISTS <table_name> (
        key TEXT PRIMARY KEY, value JSONB NOT NULL,
        created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
        updated_at TIMESTAMPTZ NOT NULL DEFAULT now(), expires_at TIMESTAMPTZ)

Expired entries (``ttl``) are invisible to every operation and deleted when a key is written
again. The table name is checked as a plain SQL name and always quoted.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from flowrunner.nodes.kv_ops import MAX_SCAN, KeyMissing

if TYPE_CHECKING:
    import asyncpg

_LIVE = "(expires_at IS NULL OR expires_at > now())"


def quoted(name: str) -> str:
    return ".".join(f'"{part}"' for part in name.split("."))


class PgTable:
    """``kv_ops.KVTable`` on one table, inside the node's transaction."""

    ordered = True

    def __init__(self, conn: asyncpg.Connection, name: str) -> None:
        self._conn, self.name, self._t = conn, name, quoted(name)

    async def ensure(self, known: set[str]) -> None:
        """Create the table unless ``known`` (tables this pool made or found) has it."""
        if self.name in known:
            return
        import asyncpg  # loaded by the pool that opened this connection

        # IF NOT EXISTS still races on the catalog when two runs create the same table at
        # once; a savepoint lets the loser carry on (the table exists either way).
        try:
            async with self._conn.transaction():
                await self._conn.execute(
                    f"CREATE TABLE IF NOT EXISTS {self._t} ("
                    "key TEXT PRIMARY KEY, value JSONB NOT NULL, "
                    "created_at TIMESTAMPTZ NOT NULL DEFAULT now(), "
                    "updated_at TIMESTAMPTZ NOT NULL DEFAULT now(), expires_at TIMESTAMPTZ)"
                )
        except asyncpg.UniqueViolationError:
            pass
        known.add(self.name)

    async def get(self, key: str) -> Any:
        row = await self._conn.fetchrow(
            f"SELECT value FROM {self._t} WHERE key = $1 AND {_LIVE}", key
        )
        if row is None:
            raise KeyMissing(key)
        return row["value"]

    async def set(self, key: str, value: Any, ttl: float | None) -> None:
        await self._conn.execute(
            f"INSERT INTO {self._t} AS t (key, value, expires_at) VALUES ($1, $2::text::jsonb, "
            "CASE WHEN $3::float8 IS NULL THEN NULL "
            "ELSE now() + make_interval(secs => $3::float8) END) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = now(), "
            "expires_at = excluded.expires_at, "
            "created_at = CASE WHEN t.expires_at <= now() THEN now() ELSE t.created_at END",
            key,
            # As JSON text: a None argument would be SQL NULL, not JSON null.
            json.dumps(value),
            ttl,
        )

    async def delete(self, key: str) -> bool:
        live = await self._conn.fetchval(
            f"WITH gone AS (DELETE FROM {self._t} WHERE key = $1 RETURNING expires_at) "
            "SELECT count(*) FROM gone WHERE expires_at IS NULL OR expires_at > now()",
            key,
        )
        return bool(live)

    async def scan(self, prefix: str) -> AsyncIterator[tuple[str, Any]]:
        rows = await self._conn.fetch(
            f"SELECT key, value FROM {self._t} WHERE starts_with(key, $1) AND {_LIVE} "
            "ORDER BY key LIMIT $2",
            prefix,
            MAX_SCAN + 1,
        )
        for row in rows:
            yield row["key"], row["value"]
