"""The hash-chained audit log in SQL."""

from __future__ import annotations

import builtins
from typing import Any

from sqlalchemy import Row, select, union, update
from sqlalchemy.ext.asyncio import AsyncConnection

from flowrunner import jsontext
from flowrunner.storage.chain import GENESIS_HASH, link
from flowrunner.storage.pagination import clamp_limit
from flowrunner.storage.protocols import DEFAULT_LIMIT, MAX_LIMIT
from flowrunner.storage.records import AuditChain, AuditRecord, Clock, NewAuditEntry, Page
from flowrunner.storage.sql.database import Database, columns_of
from flowrunner.storage.sql.paging import key_page
from flowrunner.storage.sql.tables import audit_heads, audit_records

A = audit_records.c
H = audit_heads.c


def _record(r: Row[Any]) -> AuditRecord:
    return AuditRecord(**{name: getattr(r, name) for name in AuditRecord.__slots__})


class SqlAudit:
    def __init__(self, db: Database, clock: Clock) -> None:
        self._db, self._clock = db, clock

    async def append(self, chain: str, entry: NewAuditEntry) -> AuditRecord:
        ensure_head = (
            self._db.insert(audit_heads)
            .values(chain=chain, seq=0, hash=GENESIS_HASH)
            .on_conflict_do_nothing(index_elements=[H.chain])
        )

        async def work(conn: AsyncConnection) -> AuditRecord:
            await conn.execute(ensure_head)
            # The head row lock serializes appends to this chain (other chains run freely);
            # the (chain, seq) primary key would reject a fork even without it.
            head = (
                await conn.execute(select(H.seq, H.hash).where(H.chain == chain).with_for_update())
            ).one()
            # The data is hashed as it will be read back (a JSON round trip through the
            # column), so verification never depends on the driver.
            record = link(
                chain, head.seq + 1, entry, self._clock(), head.hash, _json_copy(entry.data)
            )
            await conn.execute(audit_records.insert().values(**columns_of(record)))
            await conn.execute(
                update(audit_heads).where(H.chain == chain).values(seq=record.seq, hash=record.hash)
            )
            return record

        return await self._db.write(work)

    async def list(
        self, chain: str, *, after_seq: int = 0, limit: int = MAX_LIMIT
    ) -> builtins.list[AuditRecord]:
        stmt = (
            select(audit_records)
            .where(A.chain == chain, A.seq > after_seq)
            .order_by(A.seq)
            .limit(clamp_limit(limit))
        )

        async def work(conn: AsyncConnection) -> builtins.list[AuditRecord]:
            return [_record(r) for r in (await conn.execute(stmt)).all()]

        return await self._db.read(work)

    async def list_for_account(
        self,
        account_id: str,
        *,
        limit: int = DEFAULT_LIMIT,
        cursor: str | None = None,
        chain: str | None = None,
    ) -> Page[AuditRecord]:
        stmt = select(audit_records).where(A.account_id == account_id)
        if chain is not None:
            stmt = stmt.where(A.chain == chain)

        async def work(conn: AsyncConnection) -> Page[AuditRecord]:
            return await key_page(
                conn, stmt, [A.created_at, A.chain, A.seq], limit=limit, cursor=cursor,
                record=_record, descending=True,
            )  # fmt: skip

        return await self._db.read(work)

    async def chains(self) -> builtins.list[AuditChain]:
        # Names from both tables: rows written around the store may have no head, and a head
        # may have lost all its rows.
        names = union(select(A.chain), select(H.chain)).subquery()
        stmt = (
            select(names.c.chain, H.seq, H.hash)
            .select_from(names.outerjoin(audit_heads, H.chain == names.c.chain))
            .order_by(names.c.chain)
        )

        async def work(conn: AsyncConnection) -> builtins.list[AuditChain]:
            return [AuditChain(r[0], r[1], r[2]) for r in (await conn.execute(stmt)).all()]

        return await self._db.read(work)


def _json_copy(data: Any) -> Any:
    # The column's own serializer (jsontext), so the hash covers exactly what is stored.
    return jsontext.copy(dict(data))
