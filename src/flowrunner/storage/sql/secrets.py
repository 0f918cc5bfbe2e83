"""Encrypted secrets in SQL."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Row, delete, select
from sqlalchemy.ext.asyncio import AsyncConnection

from flowrunner.errors import NotFound
from flowrunner.storage.protocols import DEFAULT_LIMIT
from flowrunner.storage.records import Clock, JSONValue, Page, Secret
from flowrunner.storage.sql.database import Database
from flowrunner.storage.sql.paging import key_page, key_page_cut, key_page_query
from flowrunner.storage.sql.tables import secrets


def _secret(r: Row[Any]) -> Secret:
    return Secret(
        r.account_id, r.key, bytes(r.ciphertext), r.key_id, r.metadata, r.created_at, r.updated_at
    )


class SqlSecrets:
    def __init__(self, db: Database, clock: Clock) -> None:
        self._db, self._clock = db, clock

    async def put(
        self,
        account_id: str,
        key: str,
        *,
        ciphertext: bytes,
        key_id: str,
        metadata: Mapping[str, JSONValue] | None = None,
    ) -> Secret:
        now = self._clock()
        values = {
            "account_id": account_id,
            "key": key,
            "ciphertext": bytes(ciphertext),
            "key_id": key_id,
            "metadata": dict(metadata or {}),
            "created_at": now,
            "updated_at": now,
        }
        insert = self._db.insert(secrets).values(**values)
        stmt = insert.on_conflict_do_update(
            index_elements=[secrets.c.account_id, secrets.c.key],
            set_={
                "ciphertext": insert.excluded.ciphertext,
                "key_id": insert.excluded.key_id,
                "metadata": insert.excluded.metadata,
                "updated_at": insert.excluded.updated_at,
            },
        ).returning(*secrets.c)

        async def work(conn: AsyncConnection) -> Secret:
            return _secret((await conn.execute(stmt)).one())

        return await self._db.write(work)

    async def get(self, account_id: str, key: str) -> Secret:
        async def work(conn: AsyncConnection) -> Secret:
            stmt = select(secrets).where(secrets.c.account_id == account_id, secrets.c.key == key)
            row = (await conn.execute(stmt)).first()
            if row is None:
                raise NotFound("secret not found", account_id=account_id, key=key)
            return _secret(row)

        return await self._db.read(work)

    async def delete(self, account_id: str, key: str) -> None:
        async def work(conn: AsyncConnection) -> None:
            stmt = delete(secrets).where(secrets.c.account_id == account_id, secrets.c.key == key)
            if (await conn.execute(stmt)).rowcount == 0:
                raise NotFound("secret not found", account_id=account_id, key=key)

        await self._db.write(work)

    async def list(
        self,
        account_id: str,
        *,
        limit: int = DEFAULT_LIMIT,
        cursor: str | None = None,
        key_prefix: str = "",
    ) -> Page[Secret]:
        stmt = select(secrets).where(secrets.c.account_id == account_id)
        if key_prefix:
            stmt = stmt.where(secrets.c.key.startswith(key_prefix, autoescape=True))

        # One statement (``Database.all``), on SQLite's one-hop path when there is one.
        order = [secrets.c.key]
        query = key_page_query(stmt, order, limit=limit, cursor=cursor)
        return key_page_cut(await self._db.all(query), order, limit, _secret)

    async def admin_list_by_key_id(
        self, key_id: str, *, limit: int = DEFAULT_LIMIT, cursor: str | None = None
    ) -> Page[Secret]:
        stmt = select(secrets).where(secrets.c.key_id == key_id)

        async def work(conn: AsyncConnection) -> Page[Secret]:
            return await key_page(
                conn, stmt, [secrets.c.account_id, secrets.c.key], limit=limit, cursor=cursor,
                record=_secret,
            )  # fmt: skip

        return await self._db.read(work)
