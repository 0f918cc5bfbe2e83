"""The namespaced key-value store (for the ``store`` node) in SQL."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, case, delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from flowrunner.errors import Conflict, NotFound
from flowrunner.storage.kv_updates import appended, incremented
from flowrunner.storage.pagination import clamp_limit, encode_cursor
from flowrunner.storage.protocols import DEFAULT_LIMIT
from flowrunner.storage.query import matches
from flowrunner.storage.records import Clock, JSONValue, KVEntry, Page
from flowrunner.storage.sql.database import Database
from flowrunner.storage.sql.paging import key_page
from flowrunner.storage.sql.tables import kv_entries

K = kv_entries.c
SCAN_BATCH = 200


def _entry(r: Row[Any]) -> KVEntry:
    return KVEntry(
        r.account_id, r.namespace, r.key, r.value, r.created_at, r.updated_at, r.expires_at
    )


class SqlKV:
    def __init__(self, db: Database, clock: Clock) -> None:
        self._db, self._clock = db, clock

    def _live(self) -> Any:
        return or_(K.expires_at.is_(None), K.expires_at > self._clock())

    def _insert(
        self,
        account_id: str,
        namespace: str,
        key: str,
        value: JSONValue,
        now: datetime,
        ttl: timedelta | None,
    ) -> Any:
        return self._db.insert(kv_entries).values(
            account_id=account_id,
            namespace=namespace,
            key=key,
            value=value,
            created_at=now,
            updated_at=now,
            expires_at=now + ttl if ttl is not None else None,
        )

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
        insert = self._insert(account_id, namespace, key, value, now, ttl)
        stmt = insert.on_conflict_do_update(
            index_elements=[K.account_id, K.namespace, K.key],
            set_={
                "value": insert.excluded.value,
                "updated_at": insert.excluded.updated_at,
                "expires_at": insert.excluded.expires_at,
                # Replacing an entry that had already expired is a new entry.
                "created_at": case(
                    (K.expires_at <= now, insert.excluded.created_at), else_=K.created_at
                ),
            },
        ).returning(*kv_entries.c)

        async def work(conn: AsyncConnection) -> KVEntry:
            return _entry((await conn.execute(stmt)).one())

        return await self._db.write(work)

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
        insert = self._insert(account_id, namespace, key, value, now, ttl)
        # One statement: the row's lock (PostgreSQL) or the write transaction (SQLite) makes
        # concurrent calls see each other's row; only an expired row is overwritten.
        stmt = insert.on_conflict_do_update(
            index_elements=[K.account_id, K.namespace, K.key],
            set_={
                "value": insert.excluded.value,
                "created_at": insert.excluded.created_at,
                "updated_at": insert.excluded.updated_at,
                "expires_at": insert.excluded.expires_at,
            },
            where=K.expires_at <= now,
        ).returning(*kv_entries.c)

        async def work(conn: AsyncConnection) -> KVEntry:
            row = (await conn.execute(stmt)).first()
            if row is None:
                raise Conflict("key exists", namespace=namespace, key=key)
            return _entry(row)

        return await self._db.write(work)

    async def get(self, account_id: str, namespace: str, key: str) -> KVEntry:
        stmt = select(kv_entries).where(
            K.account_id == account_id, K.namespace == namespace, K.key == key, self._live()
        )

        async def work(conn: AsyncConnection) -> KVEntry:
            row = (await conn.execute(stmt)).first()
            if row is None:
                raise NotFound("key not found", namespace=namespace, key=key)
            return _entry(row)

        return await self._db.read(work)

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
        """Read-modify-write of one entry in a write transaction, the row locked throughout.

        SQLite write transactions are serial (BEGIN IMMEDIATE); on PostgreSQL the row is
        locked (FOR UPDATE), and a missing row is inserted first: a concurrent insert of the
        same key waits for ours to commit, finds the row, and then locks it.
        """
        now = self._clock()
        where = (K.account_id == account_id, K.namespace == namespace, K.key == key)
        locked = select(kv_entries).where(*where).with_for_update()

        async def work(conn: AsyncConnection) -> KVEntry:
            row = (await conn.execute(locked)).first()
            if row is None:
                insert = (
                    self._db.insert(kv_entries)
                    .values(
                        account_id=account_id,
                        namespace=namespace,
                        key=key,
                        value=compute(None, False),
                        created_at=now,
                        updated_at=now,
                        expires_at=None,
                    )
                    .on_conflict_do_nothing()
                    .returning(*kv_entries.c)
                )
                inserted = (await conn.execute(insert)).first()
                if inserted is not None:
                    return _entry(inserted)
                row = (await conn.execute(locked)).one()
            live = row.expires_at is None or row.expires_at > now
            stmt = (
                update(kv_entries)
                .where(*where)
                .values(
                    value=compute(row.value if live else None, live),
                    updated_at=now,
                    created_at=row.created_at if live else now,
                    expires_at=row.expires_at if live else None,
                )
                .returning(*kv_entries.c)
            )
            return _entry((await conn.execute(stmt)).one())

        return await self._db.write(work)

    async def delete(self, account_id: str, namespace: str, key: str) -> bool:
        where = (K.account_id == account_id, K.namespace == namespace, K.key == key)

        async def work(conn: AsyncConnection) -> bool:
            live = (await conn.execute(delete(kv_entries).where(*where, self._live()))).rowcount
            await conn.execute(delete(kv_entries).where(*where))  # an expired leftover, if any
            return live > 0

        return await self._db.write(work)

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
        stmt = select(kv_entries).where(
            K.account_id == account_id, K.namespace == namespace, self._live()
        )
        if prefix:
            stmt = stmt.where(K.key.startswith(prefix, autoescape=True))
        limit = clamp_limit(limit)

        async def work(conn: AsyncConnection) -> Page[KVEntry]:
            if not where:
                return await key_page(
                    conn, stmt, [K.key], limit=limit, cursor=cursor, record=_entry
                )
            # JSON field comparison differs per dialect (and per JSON type of the value), so
            # ``where`` is applied here on key-ordered batches; it stays one index range scan.
            found: list[KVEntry] = []
            after = cursor
            while True:
                page = await key_page(
                    conn, stmt, [K.key], limit=SCAN_BATCH, cursor=after, record=_entry
                )
                found += [e for e in page.items if matches(e.value, where)]
                if len(found) > limit:
                    return Page(found[:limit], encode_cursor(found[limit - 1].key))
                if page.next_cursor is None:
                    return Page(found)
                after = page.next_cursor

        return await self._db.read(work)

    async def admin_purge_expired(self) -> int:
        async def work(conn: AsyncConnection) -> int:
            stmt = delete(kv_entries).where(K.expires_at <= self._clock())
            return (await conn.execute(stmt)).rowcount

        return await self._db.write(work)
