"""Webhook endpoints and the delivery outbox in SQL."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Row, and_, delete, exists, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from flowrunner.errors import Conflict, NotFound
from flowrunner.storage.pagination import clamp_limit, encode_cursor
from flowrunner.storage.protocols import DEFAULT_LIMIT
from flowrunner.storage.records import (
    ATTEMPTS_NAMESPACE,
    FINISHED_DELIVERY,
    Clock,
    DeliveryStatus,
    JSONValue,
    NewDelivery,
    Page,
    WebhookDelivery,
    WebhookEndpoint,
    attempts_prefix,
    delivery_status,
    new_id,
    pending_delivery,
)
from flowrunner.storage.sql.database import Database, columns_of
from flowrunner.storage.sql.paging import time_page
from flowrunner.storage.sql.tables import kv_entries, webhook_deliveries, webhook_endpoints

W = webhook_endpoints.c
D = webhook_deliveries.c
K = kv_entries.c
# Attempt keys deleted per statement: each is a range on kv_entries' primary key.
_ATTEMPT_RANGES = 200


def _endpoint(r: Row[Any]) -> WebhookEndpoint:
    return WebhookEndpoint(
        r.id, r.account_id, r.url, tuple(r.events), r.secret, r.enabled,
        r.created_at, r.updated_at, r.description,
    )  # fmt: skip


def _delivery(r: Row[Any]) -> WebhookDelivery:
    return WebhookDelivery(**{name: getattr(r, name) for name in WebhookDelivery.__slots__})


async def _get_endpoint(conn: AsyncConnection, account_id: str, endpoint_id: str) -> Row[Any]:
    stmt = select(webhook_endpoints).where(W.id == endpoint_id, W.account_id == account_id)
    row = (await conn.execute(stmt)).first()
    if row is None:
        raise NotFound("webhook endpoint not found", endpoint_id=endpoint_id)
    return row


class SqlWebhooks:
    def __init__(self, db: Database, clock: Clock) -> None:
        self._db, self._clock = db, clock

    async def create_endpoint(
        self,
        account_id: str,
        *,
        url: str,
        secret: str,
        events: Sequence[str] = (),
        enabled: bool = True,
        description: str = "",
    ) -> WebhookEndpoint:
        now = self._clock()
        endpoint = WebhookEndpoint(
            new_id(), account_id, url, tuple(events), secret, enabled, now, now, description
        )

        async def work(conn: AsyncConnection) -> WebhookEndpoint:
            values = columns_of(endpoint) | {"events": list(endpoint.events)}
            await conn.execute(webhook_endpoints.insert().values(**values))
            return endpoint

        return await self._db.write(work)

    async def get_endpoint(self, account_id: str, endpoint_id: str) -> WebhookEndpoint:
        async def work(conn: AsyncConnection) -> WebhookEndpoint:
            return _endpoint(await _get_endpoint(conn, account_id, endpoint_id))

        return await self._db.read(work)

    async def list_endpoints(
        self,
        account_id: str,
        *,
        limit: int = DEFAULT_LIMIT,
        cursor: str | None = None,
        enabled: bool | None = None,
        event: str | None = None,
    ) -> Page[WebhookEndpoint]:
        stmt = select(webhook_endpoints).where(W.account_id == account_id)
        if enabled is not None:
            stmt = stmt.where(W.enabled == enabled)
        limit = clamp_limit(limit)

        async def work(conn: AsyncConnection) -> Page[WebhookEndpoint]:
            if event is None:
                return await time_page(
                    conn, stmt, webhook_endpoints, limit=limit, cursor=cursor, record=_endpoint
                )
            # The event list is JSON, which the two dialects query differently; an account has
            # few endpoints, so filter page by page here instead.
            found: list[WebhookEndpoint] = []
            after = cursor
            while True:
                page = await time_page(
                    conn, stmt, webhook_endpoints, limit=200, cursor=after, record=_endpoint
                )
                found += [w for w in page.items if not w.events or event in w.events]
                if len(found) > limit:
                    last = found[limit - 1]
                    return Page(found[:limit], encode_cursor(last.created_at, last.id))
                if page.next_cursor is None:
                    return Page(found)
                after = page.next_cursor

        return await self._db.read(work)

    async def update_endpoint(
        self,
        account_id: str,
        endpoint_id: str,
        *,
        url: str | None = None,
        secret: str | None = None,
        events: Sequence[str] | None = None,
        enabled: bool | None = None,
        description: str | None = None,
    ) -> WebhookEndpoint:
        given = {
            "url": url, "secret": secret, "enabled": enabled, "description": description,
            "events": list(events) if events is not None else None,
        }  # fmt: skip
        values = {k: v for k, v in given.items() if v is not None}

        async def work(conn: AsyncConnection) -> WebhookEndpoint:
            stmt = (
                update(webhook_endpoints)
                .where(W.id == endpoint_id, W.account_id == account_id)
                .values(**values, updated_at=self._clock())
                .returning(*webhook_endpoints.c)
            )
            row = (await conn.execute(stmt)).first()
            if row is None:
                raise NotFound("webhook endpoint not found", endpoint_id=endpoint_id)
            return _endpoint(row)

        return await self._db.write(work)

    async def delete_endpoint(self, account_id: str, endpoint_id: str) -> None:
        async def work(conn: AsyncConnection) -> None:
            await _get_endpoint(conn, account_id, endpoint_id)
            await conn.execute(delete(webhook_deliveries).where(D.endpoint_id == endpoint_id))
            await conn.execute(delete(webhook_endpoints).where(W.id == endpoint_id))

        await self._db.write(work)

    async def enqueue(
        self,
        account_id: str,
        endpoint_id: str,
        *,
        event_type: str,
        payload: Mapping[str, JSONValue],
        not_before: datetime | None = None,
    ) -> WebhookDelivery:
        now = self._clock()
        delivery = WebhookDelivery(
            id=new_id(),
            account_id=account_id,
            endpoint_id=endpoint_id,
            event_type=event_type,
            payload=dict(payload),
            status="pending",
            attempts=0,
            next_attempt_at=not_before or now,
            created_at=now,
        )

        async def work(conn: AsyncConnection) -> WebhookDelivery:
            await _get_endpoint(conn, account_id, endpoint_id)
            await conn.execute(webhook_deliveries.insert().values(**columns_of(delivery)))
            return delivery

        return await self._db.write(work)

    async def get_delivery(self, account_id: str, delivery_id: str) -> WebhookDelivery:
        async def work(conn: AsyncConnection) -> WebhookDelivery:
            stmt = select(webhook_deliveries).where(D.id == delivery_id, D.account_id == account_id)
            row = (await conn.execute(stmt)).first()
            if row is None:
                raise NotFound("webhook delivery not found", delivery_id=delivery_id)
            return _delivery(row)

        return await self._db.read(work)

    async def list_deliveries(
        self,
        account_id: str,
        *,
        limit: int = DEFAULT_LIMIT,
        cursor: str | None = None,
        endpoint_id: str | None = None,
        status: DeliveryStatus | None = None,
    ) -> Page[WebhookDelivery]:
        stmt = select(webhook_deliveries).where(D.account_id == account_id)
        if endpoint_id is not None:
            stmt = stmt.where(D.endpoint_id == endpoint_id)
        if status is not None:
            stmt = stmt.where(D.status == status)

        async def work(conn: AsyncConnection) -> Page[WebhookDelivery]:
            return await time_page(
                conn, stmt, webhook_deliveries, limit=limit, cursor=cursor, record=_delivery
            )

        return await self._db.read(work)

    async def admin_claim_due(
        self, *, worker: str, limit: int = 10, lease: timedelta = timedelta(seconds=60)
    ) -> list[WebhookDelivery]:
        now = self._clock()
        due = (
            D.status == "pending",
            D.next_attempt_at <= now,
            or_(D.claimed_until.is_(None), D.claimed_until <= now),
        )
        # The outbox pattern: SKIP LOCKED on PostgreSQL lets N workers claim disjoint batches
        # without waiting on each other; the outer WHERE re-checks on the locked row. SQLite
        # ignores FOR UPDATE and runs the conditional update alone (writes are serialized).
        candidates = (
            select(D.id)
            .where(*due)
            .order_by(D.next_attempt_at, D.id)
            .limit(clamp_limit(limit))
            .with_for_update(skip_locked=True)
            # A CTE, so PostgreSQL picks the candidates once: as a plain IN subquery it may
            # re-run the LIMIT per outer row and claim past the limit.
            .cte("candidates")
        )
        stmt = (
            update(webhook_deliveries)
            .where(D.id.in_(select(candidates.c.id)), *due)
            .values(claimed_by=worker, claimed_until=now + lease)
            .returning(*webhook_deliveries.c)
        )

        async def work(conn: AsyncConnection) -> list[WebhookDelivery]:
            rows = (await conn.execute(stmt)).all()
            return sorted((_delivery(r) for r in rows), key=lambda d: (d.next_attempt_at, d.id))

        return await self._db.write(work)

    async def record_attempt(
        self,
        account_id: str,
        delivery_id: str,
        *,
        worker: str,
        delivered: bool,
        status_code: int | None = None,
        error: str | None = None,
        retry_at: datetime | None = None,
    ) -> WebhookDelivery:
        now = self._clock()
        status = delivery_status(delivered, retry_at)
        values: dict[str, Any] = {
            "status": status,
            "attempts": D.attempts + 1,
            "last_status_code": status_code,
            "last_error": error,
            "delivered_at": now if delivered else None,
            "claimed_by": None,
            "claimed_until": None,
        }
        if status == "pending":
            values["next_attempt_at"] = retry_at

        async def work(conn: AsyncConnection) -> WebhookDelivery:
            stmt = (
                update(webhook_deliveries)
                .where(
                    D.id == delivery_id,
                    D.account_id == account_id,
                    D.claimed_by == worker,
                    D.status == "pending",
                )
                .values(**values)
                .returning(*webhook_deliveries.c)
            )
            row = (await conn.execute(stmt)).first()
            if row is None:
                current = await self._get_in(conn, account_id, delivery_id)
                raise Conflict(
                    "delivery is not claimed by this worker", claimed_by=current.claimed_by
                )
            return _delivery(row)

        return await self._db.write(work)

    async def _get_in(
        self, conn: AsyncConnection, account_id: str, delivery_id: str
    ) -> WebhookDelivery:
        stmt = select(webhook_deliveries).where(D.id == delivery_id, D.account_id == account_id)
        row = (await conn.execute(stmt)).first()
        if row is None:
            raise NotFound("webhook delivery not found", delivery_id=delivery_id)
        return _delivery(row)


async def insert_outbox(
    conn: AsyncConnection,
    account_id: str,
    outbox: Sequence[NewDelivery],
    now: datetime,
    *,
    execution_id: str | None = None,
) -> None:
    """Add ``outbox`` as pending deliveries (of the run ``execution_id``, if a run's change
    wrote them) inside the caller's transaction; entries whose endpoint is gone (deleted
    meanwhile) are dropped rather than failing the caller's write."""
    wanted = {entry.endpoint_id for entry in outbox}
    stmt = select(W.id).where(W.account_id == account_id, W.id.in_(wanted))
    present = set((await conn.execute(stmt)).scalars())
    rows = [
        columns_of(pending_delivery(account_id, entry, now, execution_id=execution_id))
        for entry in outbox
        if entry.endpoint_id in present
    ]
    if rows:
        await conn.execute(webhook_deliveries.insert(), rows)


def has_pending_delivery(execution_id: ColumnElement[str]) -> ColumnElement[bool]:
    """Whether the run ``execution_id`` (a column of the caller's statement) has a delivery
    still to send: retention leaves such a run for a later pass (``ExecutionStore.delete``)."""
    return exists().where(D.execution_id == execution_id, D.status == "pending")


async def delete_run_deliveries(
    conn: AsyncConnection, account_id: str, execution_ids: Sequence[str]
) -> None:
    """Delete the finished deliveries of ``execution_ids`` with their attempts' detail, in the
    caller's transaction (the run deletion's). A pending one, which the caller's check let
    slip in meanwhile, is left to be sent."""
    gone = await conn.execute(
        delete(webhook_deliveries)
        .where(
            D.account_id == account_id,
            D.execution_id.in_(execution_ids),
            D.status.in_(FINISHED_DELIVERY),
        )
        .returning(D.id)
    )
    ids = [row[0] for row in gone]
    for start in range(0, len(ids), _ATTEMPT_RANGES):
        # A range per delivery (``<id>:`` up to ``<id>;``, the next character) stays on the
        # primary key, where LIKE would not on PostgreSQL's default collation.
        ranges = [
            and_(K.key >= attempts_prefix(i), K.key < f"{i};")
            for i in ids[start : start + _ATTEMPT_RANGES]
        ]
        await conn.execute(
            delete(kv_entries).where(
                K.account_id == account_id, K.namespace == ATTEMPTS_NAMESPACE, or_(*ranges)
            )
        )
