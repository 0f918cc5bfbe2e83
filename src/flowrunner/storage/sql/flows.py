"""Flows and their immutable versions in SQL."""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, Select, delete, exists, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from flowrunner.errors import Conflict, NotFound
from flowrunner.storage.protocols import DEFAULT_LIMIT
from flowrunner.storage.records import Clock, Flow, FlowVersion, NewDelivery, Page, new_id
from flowrunner.storage.sql.database import Database, columns_of
from flowrunner.storage.sql.paging import key_page, time_page
from flowrunner.storage.sql.tables import flow_tags, flow_versions, flows
from flowrunner.storage.sql.webhooks import insert_outbox


def _flow(r: Row[Any]) -> Flow:
    return Flow(
        r.id, r.account_id, r.name, r.description, tuple(r.tags), r.current_version,
        r.created_at, r.updated_at, r.deleted_at,
    )  # fmt: skip


def _version(r: Row[Any]) -> FlowVersion:
    return FlowVersion(
        r.flow_id, r.account_id, r.number, r.yaml, r.checksum, r.author, r.created_at, r.message
    )


class SqlFlows:
    def __init__(self, db: Database, clock: Clock) -> None:
        self._db, self._clock = db, clock

    async def create(
        self,
        account_id: str,
        *,
        name: str,
        description: str = "",
        tags: Sequence[str] = (),
    ) -> Flow:
        now = self._clock()
        flow = Flow(
            new_id(), account_id, name, description, tuple(dict.fromkeys(tags)), 0, now, now
        )

        async def work(conn: AsyncConnection) -> Flow:
            await conn.execute(
                flows.insert().values(**columns_of(flow) | {"tags": list(flow.tags)})
            )
            await _write_tags(conn, flow.id, flow.tags)
            return flow

        return await self._db.write(work)

    async def get(self, account_id: str, flow_id: str, *, include_deleted: bool = False) -> Flow:
        row = await self._db.first(_select_flow(account_id, flow_id, include_deleted))
        if row is None:
            raise NotFound("flow not found", account_id=account_id, flow_id=flow_id)
        return _flow(row)

    async def list(
        self,
        account_id: str,
        *,
        limit: int = DEFAULT_LIMIT,
        cursor: str | None = None,
        name_contains: str | None = None,
        tags: Collection[str] = (),
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        include_deleted: bool = False,
    ) -> Page[Flow]:
        stmt = select(flows).where(flows.c.account_id == account_id)
        if not include_deleted:
            stmt = stmt.where(flows.c.deleted_at.is_(None))
        if name_contains:
            stmt = stmt.where(func.lower(flows.c.name).contains(name_contains.lower()))
        for tag in set(tags):
            stmt = stmt.where(
                exists().where(flow_tags.c.flow_id == flows.c.id, flow_tags.c.tag == tag)
            )
        if created_after is not None:
            stmt = stmt.where(flows.c.created_at >= created_after)
        if created_before is not None:
            stmt = stmt.where(flows.c.created_at < created_before)

        async def work(conn: AsyncConnection) -> Page[Flow]:
            return await time_page(conn, stmt, flows, limit=limit, cursor=cursor, record=_flow)

        return await self._db.read(work)

    async def update(
        self,
        account_id: str,
        flow_id: str,
        *,
        name: str | None = None,
        description: str | None = None,
        tags: Sequence[str] | None = None,
        outbox: Sequence[NewDelivery] = (),
    ) -> Flow:
        now = self._clock()
        values: dict[str, Any] = {"updated_at": now}
        if name is not None:
            values["name"] = name
        if description is not None:
            values["description"] = description
        unique_tags = tuple(dict.fromkeys(tags)) if tags is not None else None
        if unique_tags is not None:
            values["tags"] = list(unique_tags)

        async def work(conn: AsyncConnection) -> Flow:
            row = (
                await conn.execute(
                    update(flows)
                    .where(*_live(account_id, flow_id))
                    .values(**values)
                    .returning(*flows.c)
                )
            ).first()
            if row is None:
                raise NotFound("flow not found", account_id=account_id, flow_id=flow_id)
            if unique_tags is not None:
                await conn.execute(delete(flow_tags).where(flow_tags.c.flow_id == flow_id))
                await _write_tags(conn, flow_id, unique_tags)
            if outbox:
                await insert_outbox(conn, account_id, outbox, now)
            return _flow(row)

        return await self._db.write(work)

    async def delete(
        self, account_id: str, flow_id: str, *, outbox: Sequence[NewDelivery] = ()
    ) -> None:
        now = self._clock()

        async def work(conn: AsyncConnection) -> None:
            stmt = update(flows).where(*_live(account_id, flow_id))
            result = await conn.execute(stmt.values(deleted_at=now, updated_at=now))
            if result.rowcount == 0:
                raise NotFound("flow not found", account_id=account_id, flow_id=flow_id)
            if outbox:
                await insert_outbox(conn, account_id, outbox, now)

        await self._db.write(work)

    async def add_version(
        self,
        account_id: str,
        flow_id: str,
        *,
        yaml: str,
        author: str | None = None,
        expected_current: int | None = None,
        message: str | None = None,
        outbox: Sequence[NewDelivery] = (),
    ) -> FlowVersion:
        now = self._clock()
        checksum = hashlib.sha256(yaml.encode()).hexdigest()

        async def work(conn: AsyncConnection) -> FlowVersion:
            # Bumping the counter row-locks the flow: concurrent adds queue here, and the
            # expected_current check sees the committed value, not a stale read.
            stmt = update(flows).where(*_live(account_id, flow_id))
            if expected_current is not None:
                stmt = stmt.where(flows.c.current_version == expected_current)
            number = await conn.scalar(
                stmt.values(current_version=flows.c.current_version + 1, updated_at=now).returning(
                    flows.c.current_version
                )
            )
            if number is None:
                flow = await _get(conn, account_id, flow_id, include_deleted=False)
                raise Conflict(
                    f"flow is at version {flow.current_version}, not {expected_current}",
                    flow_id=flow_id,
                    current_version=flow.current_version,
                )
            version = FlowVersion(flow_id, account_id, number, yaml, checksum, author, now, message)
            await conn.execute(flow_versions.insert().values(**columns_of(version)))
            if outbox:
                await insert_outbox(conn, account_id, outbox, now)
            return version

        return await self._db.write(work)

    async def get_version(self, account_id: str, flow_id: str, number: int) -> FlowVersion:
        async def work(conn: AsyncConnection) -> FlowVersion:
            row = (
                await conn.execute(
                    select(flow_versions).where(
                        flow_versions.c.flow_id == flow_id,
                        flow_versions.c.number == number,
                        flow_versions.c.account_id == account_id,
                    )
                )
            ).first()
            if row is None:
                raise NotFound(
                    "flow version not found", account_id=account_id, flow_id=flow_id, number=number
                )
            return _version(row)

        return await self._db.read(work)

    async def list_versions(
        self,
        account_id: str,
        flow_id: str,
        *,
        limit: int = DEFAULT_LIMIT,
        cursor: str | None = None,
    ) -> Page[FlowVersion]:
        stmt = select(flow_versions).where(flow_versions.c.flow_id == flow_id)

        async def work(conn: AsyncConnection) -> Page[FlowVersion]:
            await _get(conn, account_id, flow_id, include_deleted=True)
            return await key_page(
                conn, stmt, [flow_versions.c.number], limit=limit, cursor=cursor,
                record=_version, descending=True,
            )  # fmt: skip

        return await self._db.read(work)


def _live(account_id: str, flow_id: str) -> tuple[Any, ...]:
    return (flows.c.id == flow_id, flows.c.account_id == account_id, flows.c.deleted_at.is_(None))


def _select_flow(account_id: str, flow_id: str, include_deleted: bool) -> Select[Any]:
    stmt = select(flows).where(flows.c.id == flow_id, flows.c.account_id == account_id)
    return stmt if include_deleted else stmt.where(flows.c.deleted_at.is_(None))


async def _get(
    conn: AsyncConnection, account_id: str, flow_id: str, *, include_deleted: bool
) -> Flow:
    row = (await conn.execute(_select_flow(account_id, flow_id, include_deleted))).first()
    if row is None:
        raise NotFound("flow not found", account_id=account_id, flow_id=flow_id)
    return _flow(row)


async def _write_tags(conn: AsyncConnection, flow_id: str, tags: Sequence[str]) -> None:
    if tags:
        await conn.execute(flow_tags.insert(), [{"flow_id": flow_id, "tag": t} for t in tags])
