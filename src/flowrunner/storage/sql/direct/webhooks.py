"""``DirectWebhooks``: the dispatcher's claim and attempt record in plain SQL on
``DirectSqlite``.

Every delivery is claimed, then recorded; through SQLAlchemy's async layer each of those
writes cost 1.5-3 ms of CPU and as much wall time (aiosqlite's hops), and the claim sits
between a run's end and its ``execution.completed`` leaving (the delivery latency goal of
docs/webhooks.md). Here each is one inline transaction. Values are written as the
SQLAlchemy table writes them, so either path reads the other's rows. Everything else is the
SQLAlchemy implementation's.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from flowrunner import jsontext
from flowrunner.errors import Conflict, NotFound
from flowrunner.storage.pagination import clamp_limit
from flowrunner.storage.records import Clock, WebhookDelivery, delivery_status
from flowrunner.storage.sql.database import Database
from flowrunner.storage.sql.direct.connection import DirectSqlite
from flowrunner.storage.sql.sqlite import optional_text_time, time_text
from flowrunner.storage.sql.webhooks import SqlWebhooks

_COLUMNS = WebhookDelivery.__slots__
_TIMES = frozenset({"next_attempt_at", "created_at", "delivered_at", "claimed_until"})
_RETURNING = f" RETURNING {', '.join(_COLUMNS)}"
_DUE = (
    "status = 'pending' AND next_attempt_at <= :now"
    " AND (claimed_until IS NULL OR claimed_until <= :now)"
)
# Writes are serialized on SQLite: the candidates picked are still due when updated.
_CLAIM = (
    "UPDATE webhook_deliveries SET claimed_by = :worker, claimed_until = :until"
    f" WHERE id IN (SELECT id FROM webhook_deliveries WHERE {_DUE}"
    " ORDER BY next_attempt_at, id LIMIT :limit)" + _RETURNING
)
_RECORD = (
    "UPDATE webhook_deliveries SET status = :status, attempts = attempts + 1,"
    " last_status_code = :code, last_error = :error, delivered_at = :delivered,"
    " claimed_by = NULL, claimed_until = NULL,"
    " next_attempt_at = CASE WHEN :status = 'pending' THEN :retry ELSE next_attempt_at END"
    " WHERE id = :id AND account_id = :account AND claimed_by = :worker"
    " AND status = 'pending'" + _RETURNING
)


class DirectWebhooks(SqlWebhooks):
    def __init__(self, db: Database, clock: Clock, direct: DirectSqlite) -> None:
        super().__init__(db, clock)
        self._direct = direct

    async def admin_claim_due(
        self, *, worker: str, limit: int = 10, lease: timedelta = timedelta(seconds=60)
    ) -> list[WebhookDelivery]:
        now = self._clock()
        args = {"worker": worker, "until": time_text(now + lease), "now": time_text(now),
                "limit": clamp_limit(limit)}  # fmt: skip
        rows = await self._direct.write(lambda c: c.execute(_CLAIM, args).fetchall())
        return sorted(map(_delivery, rows), key=lambda d: (d.next_attempt_at, d.id))

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
        args = {
            "status": delivery_status(delivered, retry_at),
            "code": status_code,
            "error": error,
            "delivered": time_text(now) if delivered else None,
            "retry": None if retry_at is None else time_text(retry_at),
            "id": delivery_id,
            "account": account_id,
            "worker": worker,
        }
        row = await self._direct.write(lambda c: _record(c, args))
        return _delivery(row)


def _record(conn: sqlite3.Connection, args: dict[str, Any]) -> Sequence[Any]:
    row: Sequence[Any] | None = conn.execute(_RECORD, args).fetchone()
    if row is not None:
        return row
    found = conn.execute(
        "SELECT claimed_by FROM webhook_deliveries WHERE id = ? AND account_id = ?",
        (args["id"], args["account"]),
    ).fetchone()
    if found is None:
        raise NotFound("webhook delivery not found", delivery_id=args["id"])
    raise Conflict("delivery is not claimed by this worker", claimed_by=found[0])


def _delivery(row: Sequence[Any]) -> WebhookDelivery:
    values = dict(zip(_COLUMNS, row, strict=True))
    values["payload"] = jsontext.loads(values["payload"])
    for name in _TIMES:
        values[name] = optional_text_time(values[name])
    return WebhookDelivery(**values)
