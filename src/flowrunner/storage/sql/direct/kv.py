"""``DirectKV``: one key's read and write in plain SQL on ``DirectSqlite``.

A webhook delivery ends with two of them (its attempt kept for the API, its endpoint's health
read), and a ``store`` node's get and put are the same calls; through SQLAlchemy's async
layer each cost about a millisecond of CPU (aiosqlite's thread hops), a quarter of a server's
CPU when every run sends a webhook. Here each is one inline transaction. Values are written
as the SQLAlchemy table writes them (JSON text through ``jsontext``, NULL for None,
``sqlite.time_text``), so either path reads the other's rows. Everything else (listings,
conditional and atomic updates, deletes) is the SQLAlchemy implementation's.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from flowrunner import jsontext
from flowrunner.errors import NotFound
from flowrunner.storage.records import Clock, JSONValue, KVEntry
from flowrunner.storage.sql.database import Database
from flowrunner.storage.sql.direct.connection import DirectSqlite
from flowrunner.storage.sql.kv import SqlKV
from flowrunner.storage.sql.sqlite import optional_text_time, text_time, time_text

_COLUMNS = "account_id, namespace, key, value, created_at, updated_at, expires_at"
_GET = (
    f"SELECT {_COLUMNS} FROM kv_entries WHERE account_id = ? AND namespace = ? AND key = ?"
    " AND (expires_at IS NULL OR expires_at > ?)"
)
# As SqlKV.put: replacing an entry that had already expired makes a new entry (created now).
_PUT = (
    f"INSERT INTO kv_entries ({_COLUMNS}) VALUES (:account, :namespace, :key, :value, :now,"
    " :now, :expires) ON CONFLICT (account_id, namespace, key) DO UPDATE SET"
    " value = excluded.value, updated_at = excluded.updated_at,"
    " expires_at = excluded.expires_at,"
    " created_at = CASE WHEN kv_entries.expires_at <= :now THEN excluded.created_at"
    " ELSE kv_entries.created_at END"
    f" RETURNING {_COLUMNS}"
)


class DirectKV(SqlKV):
    def __init__(self, db: Database, clock: Clock, direct: DirectSqlite) -> None:
        super().__init__(db, clock)
        self._direct = direct

    async def get(self, account_id: str, namespace: str, key: str) -> KVEntry:
        args = (account_id, namespace, key, time_text(self._clock()))
        row = await self._direct.read(lambda c: c.execute(_GET, args).fetchone())
        if row is None:
            raise NotFound("key not found", namespace=namespace, key=key)
        return _entry(row)

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
        args = {
            "account": account_id,
            "namespace": namespace,
            "key": key,
            "value": None if value is None else jsontext.dumps(value),
            "now": time_text(now),
            "expires": None if ttl is None else time_text(now + ttl),
        }
        row = await self._direct.write(lambda c: c.execute(_PUT, args).fetchone())
        return _entry(row)


def _entry(row: Sequence[Any]) -> KVEntry:
    return KVEntry(
        row[0], row[1], row[2], None if row[3] is None else jsontext.loads(row[3]),
        text_time(row[4]), text_time(row[5]), optional_text_time(row[6]),
    )  # fmt: skip
