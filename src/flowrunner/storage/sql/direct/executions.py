"""``DirectExecutions``: the calls of every run in plain SQL on ``DirectSqlite``.

It is ``SqlExecutions`` with the hot calls overridden (create, get, update, the events and
checkpoint of a step, leases); the rest (listings, lookups by key, recovery) stays on
SQLAlchemy. Each function below is one transaction's work, run inline or on the connection's
thread. Values are written exactly as the SQLAlchemy tables write them (JSON text,
``time_text``, NULL for None), so both paths read each other's rows.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Collection, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from flowrunner import jsontext
from flowrunner.errors import Conflict, NotFound
from flowrunner.storage.records import (
    Clock,
    Execution,
    ExecutionEvent,
    NewCheckpoint,
    NewDelivery,
    NewEvent,
    no_version_to_pin,
    pending_delivery,
)
from flowrunner.storage.sql.database import Database
from flowrunner.storage.sql.direct.connection import DirectSqlite
from flowrunner.storage.sql.direct.rows import (
    EXECUTION_COLUMNS,
    SELECT_EXECUTIONS,
    SQLITE_ROWS,
    dump_json,
)
from flowrunner.storage.sql.executions import SqlExecutions
from flowrunner.storage.sql.sqlite import time_text

COLUMNS = EXECUTION_COLUMNS
_SELECT = f"{SELECT_EXECUTIONS} WHERE e.id = ? AND e.account_id = ?"
# The codec's, under the names the writes below use.
_dump = dump_json
_execution = SQLITE_ROWS.execution
_column = SQLITE_ROWS.column


def get(conn: sqlite3.Connection, account_id: str, execution_id: str) -> Execution:
    row = conn.execute(_SELECT, (execution_id, account_id)).fetchone()
    if row is None:
        raise NotFound("execution not found", account_id=account_id, execution_id=execution_id)
    return _execution(row)


def insert(conn: sqlite3.Connection, execution: Execution, *, pin: bool = False) -> Execution:
    """``SqlExecutions._insert``'s: with ``pin``, the flow's current version."""
    if pin:
        found = conn.execute(
            "SELECT current_version FROM flows WHERE id = ? AND account_id = ?"
            " AND deleted_at IS NULL",
            (execution.flow_id, execution.account_id),
        ).fetchone()
        if found is None or not found[0]:
            raise no_version_to_pin(execution.account_id, execution.flow_id)
        execution = replace(execution, flow_version=found[0])
    if execution.idempotency_key is not None:
        used = conn.execute(
            "SELECT 1 FROM executions WHERE account_id = ? AND idempotency_key = ?",
            (execution.account_id, execution.idempotency_key),
        ).fetchone()
        if used is not None:
            raise Conflict(
                "idempotency key already used", idempotency_key=execution.idempotency_key
            )
    values = [_column(n, getattr(execution, n)) for n in COLUMNS]
    marks = ", ".join("?" * len(COLUMNS))
    conn.execute(f"INSERT INTO executions ({', '.join(COLUMNS)}) VALUES ({marks})", values)
    return execution


def update(
    conn: sqlite3.Connection,
    account_id: str,
    execution_id: str,
    values: Mapping[str, Any],
    expected_status: Collection[str],
    drop_checkpoint: bool = False,
    outbox: Sequence[NewDelivery] = (),
    now: datetime | None = None,
    *,
    ended: bool = False,
    expected_seq: int | None = None,
    events: Sequence[NewEvent] = (),
) -> Execution:
    """Set ``values`` where the status is one of ``expected_status`` (if any); ``Conflict``
    when it is not, ``NotFound`` when there is no such execution. ``drop_checkpoint``
    deletes the run's checkpoint in the same transaction; ``ended`` moves the progress its
    position row shows into the execution (unless ``values`` sets it), clears
    ``current_node`` and deletes that row; ``outbox`` entries are added to the webhook
    outbox in it too, and ``events`` appended, numbered up to the new ``last_event_seq``."""
    now = now or datetime.now(UTC)
    assigned = [f"{n} = ?" for n in values]
    params: list[Any] = [_column(n, v) for n, v in values.items()]
    if events:
        assigned.append("last_event_seq = last_event_seq + ?")
        params.append(len(events))
    if ended:
        if "progress" not in values:
            assigned.append(
                "progress = COALESCE((SELECT progress FROM execution_positions"
                " WHERE execution_id = executions.id), progress)"
            )
        if "current_node" not in values:
            assigned.append("current_node = NULL")
    sets = ", ".join(assigned) or "id = id"
    where = "id = ? AND account_id = ?"
    params += [execution_id, account_id]
    if expected_status:
        where += f" AND status IN ({', '.join('?' * len(expected_status))})"
        params += list(expected_status)
    if expected_seq is not None:
        where += " AND last_event_seq = ?"
        params.append(expected_seq)
    sql = f"UPDATE executions SET {sets} WHERE {where} RETURNING {', '.join(COLUMNS)}"
    row = conn.execute(sql, params).fetchone()
    if row is None:
        current = get(conn, account_id, execution_id)
        raise Conflict(
            f"execution is {current.status}", execution_id=execution_id, status=current.status
        )
    if drop_checkpoint:
        conn.execute(
            "DELETE FROM checkpoints WHERE execution_id = ? AND account_id = ?",
            (execution_id, account_id),
        )
    if ended:
        conn.execute("DELETE FROM execution_positions WHERE execution_id = ?", (execution_id,))
    if outbox:
        insert_outbox(conn, account_id, execution_id, outbox, now)
    updated = _execution(row)
    if events:
        insert_events(conn, account_id, execution_id, events, updated.last_event_seq, now)
    return updated


def insert_outbox(
    conn: sqlite3.Connection,
    account_id: str,
    execution_id: str,
    outbox: Sequence[NewDelivery],
    now: datetime,
) -> None:
    """Pending deliveries of the run ``execution_id`` for ``outbox``, in the caller's
    transaction; an entry whose endpoint is gone is dropped (the ``EXISTS`` guard) rather
    than failing the caller's write."""
    for entry in outbox:
        d = pending_delivery(account_id, entry, now, execution_id=execution_id)
        conn.execute(
            "INSERT INTO webhook_deliveries (id, account_id, endpoint_id, event_type, payload,"
            " status, attempts, next_attempt_at, created_at, execution_id)"
            " SELECT ?, ?, ?, ?, ?, ?, 0, ?, ?, ? WHERE EXISTS"
            " (SELECT 1 FROM webhook_endpoints WHERE id = ? AND account_id = ?)",
            (
                d.id, account_id, d.endpoint_id, d.event_type, jsontext.dumps(d.payload),
                d.status, time_text(d.next_attempt_at), time_text(d.created_at),
                execution_id, d.endpoint_id, account_id,
            ),
        )  # fmt: skip


def set_lease(
    conn: sqlite3.Connection,
    account_id: str,
    execution_id: str,
    *,
    owner: str,
    until: datetime,
    now: datetime,
    renew: bool,
) -> Execution:
    """Take (or, with ``renew``, extend) ``owner``'s lease; ``Conflict`` if another holds it."""
    free = (
        "lease_owner = ?"
        if renew
        else "(lease_owner IS NULL OR lease_expires_at <= ? OR lease_owner = ?)"
    )
    free_params: list[Any] = [owner] if renew else [time_text(now), owner]
    row = conn.execute(
        f"UPDATE executions SET lease_owner = ?, lease_expires_at = ? "
        f"WHERE id = ? AND account_id = ? AND {free} RETURNING {', '.join(COLUMNS)}",
        [owner, time_text(until), execution_id, account_id, *free_params],
    ).fetchone()
    if row is None:
        current = get(conn, account_id, execution_id)
        raise Conflict("execution is leased", lease_owner=current.lease_owner)
    return _execution(row)


def release_lease(conn: sqlite3.Connection, account_id: str, execution_id: str, owner: str) -> None:
    cursor = conn.execute(
        "UPDATE executions SET lease_owner = NULL, lease_expires_at = NULL "
        "WHERE id = ? AND account_id = ? AND lease_owner = ?",
        (execution_id, account_id, owner),
    )
    if cursor.rowcount == 0:
        get(conn, account_id, execution_id)  # NotFound; else not ours: no-op


def record_step(
    conn: sqlite3.Connection,
    account_id: str,
    execution_id: str,
    events: Sequence[NewEvent],
    checkpoint: NewCheckpoint | None,
    now: datetime,
    progress: float | None = None,
    current_node: str | None = None,
    outbox: Sequence[NewDelivery] = (),
) -> list[ExecutionEvent]:
    count = len(events)
    # Bumping the counter proves the execution exists and reserves the numbers (writes are
    # serialized, so ranges never overlap; a rolled-back step gives its range back).
    # A step that saves a checkpoint made progress: the poison-run guard starts again.
    reset = ", resume_attempts = 0" if checkpoint is not None else ""
    row = conn.execute(
        f"UPDATE executions SET last_event_seq = last_event_seq + ?{reset} "
        "WHERE id = ? AND account_id = ? RETURNING last_event_seq",
        (count, execution_id, account_id),
    ).fetchone()
    if row is None:
        raise NotFound("execution not found", account_id=account_id, execution_id=execution_id)
    stamp = time_text(now)
    new = insert_events(conn, account_id, execution_id, events, row[0], now)
    if checkpoint is not None:
        conn.execute(
            "INSERT INTO checkpoints (execution_id, account_id, shared, next_node, results,"
            " updated_at, resume) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (execution_id)"
            " DO UPDATE SET shared = excluded.shared, next_node = excluded.next_node,"
            " results = excluded.results, updated_at = excluded.updated_at,"
            " resume = excluded.resume",
            (
                execution_id,
                account_id,
                _dump(checkpoint.shared),
                checkpoint.next_node,
                jsontext.dumps(dict(checkpoint.results)),
                stamp,
                jsontext.dumps(dict(checkpoint.resume)),
            ),
        )
    if progress is not None or current_node is not None:
        conn.execute(
            "INSERT INTO execution_positions (execution_id, progress, current_node)"
            " VALUES (?, ?, ?) ON CONFLICT (execution_id) DO UPDATE SET"
            " progress = COALESCE(excluded.progress, progress),"
            " current_node = COALESCE(excluded.current_node, current_node)",
            (execution_id, progress, current_node),
        )
    if outbox:
        insert_outbox(conn, account_id, execution_id, outbox, now)
    return new


def insert_events(
    conn: sqlite3.Connection,
    account_id: str,
    execution_id: str,
    events: Sequence[NewEvent],
    last: int,
    now: datetime,
) -> list[ExecutionEvent]:
    """Insert ``events`` numbered up to ``last`` (the execution's bumped counter), in the
    caller's transaction; events without a time get ``now``."""
    first, stamp = last - len(events) + 1, time_text(now)
    new = [
        ExecutionEvent(execution_id, account_id, first + i, e.type, dict(e.data), e.time or now)
        for i, e in enumerate(events)
    ]
    if new:
        conn.executemany(
            "INSERT INTO execution_events (execution_id, seq, account_id, type, data, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            [
                (execution_id, n.seq, account_id, n.type, jsontext.dumps(n.data), _stamp(e, stamp))
                for n, e in zip(new, events, strict=True)
            ],
        )
    return new


def _stamp(event: NewEvent, now: str) -> str:
    return now if event.time is None else time_text(event.time)


class DirectExecutions(SqlExecutions):
    def __init__(self, db: Database, clock: Clock, direct: DirectSqlite) -> None:
        super().__init__(db, clock)
        self._direct = direct

    async def _insert(self, execution: Execution, *, pin: bool = False) -> Execution:
        return await self._direct.write(lambda c: insert(c, execution, pin=pin))

    async def get(self, account_id: str, execution_id: str) -> Execution:
        return await self._direct.read(lambda c: get(c, account_id, execution_id))

    async def _set(
        self,
        account_id: str,
        execution_id: str,
        values: dict[str, Any],
        expected_status: Collection[str],
        drop_checkpoint: bool,
        outbox: Sequence[NewDelivery] = (),
        *,
        ended: bool = False,
        expected_seq: int | None = None,
        events: Sequence[NewEvent] = (),
    ) -> Execution:
        now = self._clock()
        return await self._direct.write(
            lambda c: update(
                c, account_id, execution_id, values, expected_status, drop_checkpoint,
                outbox, now, ended=ended, expected_seq=expected_seq, events=events,
            )
        )  # fmt: skip

    async def _record(
        self,
        account_id: str,
        execution_id: str,
        events: Sequence[NewEvent],
        checkpoint: NewCheckpoint | None,
        now: datetime,
        position: dict[str, Any] | None = None,
        outbox: Sequence[NewDelivery] = (),
    ) -> list[ExecutionEvent]:
        where = position or {}
        progress, current_node = where.get("progress"), where.get("current_node")
        return await self._direct.write(
            lambda c: record_step(
                c,
                account_id,
                execution_id,
                events,
                checkpoint,
                now,
                progress,
                current_node,
                outbox,
            )
        )

    async def _lease(
        self,
        account_id: str,
        execution_id: str,
        owner: str,
        now: datetime,
        until: datetime,
        *,
        renew: bool,
    ) -> Execution:
        return await self._direct.write(
            lambda c: set_lease(
                c, account_id, execution_id, owner=owner, until=until, now=now, renew=renew
            )
        )

    async def release_lease(self, account_id: str, execution_id: str, *, owner: str) -> None:
        await self._direct.write(lambda c: release_lease(c, account_id, execution_id, owner))
