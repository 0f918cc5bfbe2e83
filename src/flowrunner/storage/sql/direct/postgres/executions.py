"""``PgExecutions``: the calls of every run as single prepared statements on ``DirectPostgres``.

It is ``SqlExecutions`` with the hot calls overridden (create, get, update, the events and
checkpoint of a step, leases); the rest (listings, lookups by key, recovery) stays on
SQLAlchemy. Every call below is one statement, so one round trip and its own transaction; the
writes that touch several tables chain data-modifying ``WITH`` clauses off the execution row's
``UPDATE``, whose row lock orders concurrent writers exactly as the SQLAlchemy path's
transaction does. Values are written as the SQLAlchemy tables write them (``jsontext`` JSON
text, NULL for None, aware UTC times), so both paths read each other's rows.
"""

from __future__ import annotations

import asyncio
import builtins
from collections.abc import Collection, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import replace
from datetime import datetime
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
from flowrunner.storage.sql.direct.postgres.connection import DirectPostgres
from flowrunner.storage.sql.direct.postgres.notices import ENDED_CHANNEL
from flowrunner.storage.sql.direct.rows import (
    EXECUTION_COLUMNS,
    POSTGRES_ROWS,
    SELECT_EXECUTIONS,
    dump_json,
)
from flowrunner.storage.sql.executions import SqlExecutions

COLUMNS = EXECUTION_COLUMNS
_RETURNING = ", ".join(COLUMNS)
_GET = f"{SELECT_EXECUTIONS} WHERE e.id = $1 AND e.account_id = $2"
_INSERT = (
    f"INSERT INTO executions ({_RETURNING}) VALUES"
    f" ({', '.join(f'${i}' for i in range(1, len(COLUMNS) + 1))})"
)


def _pinned_insert() -> str:
    """``_INSERT`` with the flow's current version pinned in the statement (a live flow with
    one, else no row): a run starts without reading its flow first. Parameters are numbered
    as ``_INSERT``'s without ``flow_version``; the account and flow ids are typed text, since
    they are compared as well as inserted and PostgreSQL wants one type per parameter."""
    values, n = [], 0
    for name in COLUMNS:
        if name == "flow_version":
            values.append("f.current_version")
            continue
        n += 1
        values.append(f"${n}::text" if name in ("account_id", "flow_id") else f"${n}")
    return (
        f"INSERT INTO executions ({_RETURNING}) SELECT {', '.join(values)} FROM flows f"
        " WHERE f.id = $3::text AND f.account_id = $2::text AND f.deleted_at IS NULL"
        " AND f.current_version > 0 RETURNING flow_version"
    )


_INSERT_PINNED = _pinned_insert()
_FINAL = "('completed', 'failed', 'canceled')"
# The webhook outbox rows of a write, from parallel arrays; an entry whose endpoint is gone is
# dropped (the EXISTS guard) rather than failing the write. ``{after}`` names the WITH clause
# the rows depend on, so they are written only if it matched.
_OUTBOX = (
    "outbox AS (INSERT INTO webhook_deliveries (id, account_id, endpoint_id, event_type,"
    " payload, status, attempts, next_attempt_at, created_at, execution_id)"
    " SELECT o.id, {account}, o.endpoint_id, o.event_type, o.payload::json, 'pending', 0,"
    " {now}, {now}, {execution} FROM {after}, unnest({ids}::text[], {endpoints}::text[],"
    " {types}::text[], {payloads}::text[]) AS o(id, endpoint_id, event_type, payload)"
    " WHERE EXISTS (SELECT 1 FROM webhook_endpoints w"
    " WHERE w.id = o.endpoint_id AND w.account_id = {account}))"
)


# The codec's, under the names the writes below use.
_dump = dump_json
_execution = POSTGRES_ROWS.execution
_column = POSTGRES_ROWS.column


def _outbox_args(
    account_id: str, outbox: Sequence[NewDelivery], now: datetime
) -> tuple[list[str], list[str], list[str], list[str]]:
    rows = [pending_delivery(account_id, entry, now) for entry in outbox]
    return (
        [d.id for d in rows],
        [d.endpoint_id for d in rows],
        [d.event_type for d in rows],
        [jsontext.dumps(d.payload) for d in rows],
    )


def _outbox_clause(after: str, account: str, execution: str, now: str, first: int) -> str:
    """The outbox ``WITH`` clause of the run ``execution``, its four arrays numbered from
    ``$first``."""
    ids, endpoints, types, payloads = (f"${first + i}" for i in range(4))
    return _OUTBOX.format(
        after=after, account=account, execution=execution, now=now, ids=ids,
        endpoints=endpoints, types=types, payloads=payloads,
    )  # fmt: skip


class PgExecutions(SqlExecutions):
    def __init__(self, db: Database, clock: Clock, direct: DirectPostgres) -> None:
        super().__init__(db, clock)
        self._pg = direct

    async def _insert(self, execution: Execution, *, pin: bool = False) -> Execution:
        values = [_column(n, getattr(execution, n)) for n in COLUMNS]
        try:
            if not pin:
                await self._pg.execute(_INSERT, *values)
                return execution
            values.pop(COLUMNS.index("flow_version"))
            version = await self._pg.fetchval(_INSERT_PINNED, *values)
        except Conflict as exc:
            cause = exc.__cause__
            key = execution.idempotency_key
            if key is not None and "idempotency_key" in str(
                getattr(cause, "constraint_name", "") or ""
            ):
                raise Conflict("idempotency key already used", idempotency_key=key) from cause
            raise
        if version is None:
            raise no_version_to_pin(execution.account_id, execution.flow_id)
        return replace(execution, flow_version=version)

    def watch_end(self, execution_id: str) -> AbstractAsyncContextManager[asyncio.Event]:
        """``EndNotices``: the final status of every run is notified on commit."""
        return self._pg.ended.watch(execution_id)

    async def get(self, account_id: str, execution_id: str) -> Execution:
        row = await self._pg.fetchrow(_GET, execution_id, account_id, write=False)
        if row is None:
            raise NotFound("execution not found", account_id=account_id, execution_id=execution_id)
        return _execution(row)

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
        """One statement: the row's ``UPDATE`` (on condition of ``expected_status`` and
        ``expected_seq``, its last event number) and, only
        if it matched, the checkpoint's and position's deletion, the outbox rows and the
        ``events`` (numbered up to the counter the ``UPDATE`` raised). All clauses read the
        snapshot the statement started with, so an ending run's progress is read from its
        position row in the same statement that deletes it. Events written with a final
        status notify the run's waiters on commit, as ``_record``'s do."""
        args: list[Any] = [execution_id, account_id]
        assigned = []
        for name, value in values.items():
            args.append(_column(name, value))
            assigned.append(f"{name} = ${len(args)}")
        if events:
            args.append(len(events))
            count = f"${len(args)}"
            assigned.append(f"last_event_seq = last_event_seq + {count}")
        if ended:
            if "progress" not in values:
                assigned.append(
                    "progress = COALESCE((SELECT progress FROM execution_positions"
                    " WHERE execution_id = $1), progress)"
                )
            if "current_node" not in values:
                assigned.append("current_node = NULL")
        where = "id = $1 AND account_id = $2"
        if expected_status:
            args.append(list(expected_status))
            where += f" AND status = ANY(${len(args)}::text[])"
        if expected_seq is not None:
            args.append(expected_seq)
            where += f" AND last_event_seq = ${len(args)}"
        clauses = [
            f"row AS (UPDATE executions SET {', '.join(assigned) or 'id = id'}"
            f" WHERE {where} RETURNING {_RETURNING})"
        ]
        if drop_checkpoint:
            clauses.append(
                "dropped AS (DELETE FROM checkpoints WHERE execution_id = $1 AND account_id = $2"
                " AND EXISTS (SELECT 1 FROM row))"
            )
        if ended:
            clauses.append(
                "unplaced AS (DELETE FROM execution_positions WHERE execution_id = $1"
                " AND EXISTS (SELECT 1 FROM row))"
            )
        if outbox:
            at = self._clock()
            args.append(at)
            now = f"${len(args)}"
            args.extend(_outbox_args(account_id, outbox, at))
            clauses.append(_outbox_clause("row", "$2", "$1", now, len(args) - 3))
        joined = ""
        if events:
            at = self._clock()
            args += [
                [e.type for e in events],
                [jsontext.dumps(dict(e.data)) for e in events],
                [e.time or at for e in events],
            ]
            t, d, w = (f"${len(args) - i}" for i in (2, 1, 0))
            clauses += [
                "events AS (INSERT INTO execution_events"
                " (execution_id, seq, account_id, type, data, created_at)"
                f" SELECT $1, row.last_event_seq - {count} + x.n, $2, x.type, x.data::json, x.at"
                f" FROM row, unnest({t}::text[], {d}::text[], {w}::timestamptz[])"
                " WITH ORDINALITY AS x(type, data, at, n))",
                f"notice AS (SELECT pg_notify('{ENDED_CHANNEL}', $1) FROM row"
                f" WHERE row.status IN {_FINAL})",
            ]
            joined = " LEFT JOIN notice ON true"  # a read-only clause runs only if referenced
        sql = f"WITH {', '.join(clauses)} SELECT {_RETURNING} FROM row{joined}"
        row = await self._pg.fetchrow(sql, *args)
        if row is None:
            current = await self.get(account_id, execution_id)  # NotFound, else the status
            raise Conflict(
                f"execution is {current.status}", execution_id=execution_id, status=current.status
            )
        return _execution(row)

    async def _record(
        self,
        account_id: str,
        execution_id: str,
        events: Sequence[NewEvent],
        checkpoint: NewCheckpoint | None,
        now: datetime,
        position: dict[str, Any] | None = None,
        outbox: Sequence[NewDelivery] = (),
    ) -> builtins.list[ExecutionEvent]:
        """One statement: bump the execution's event counter (which proves it exists, takes
        its row lock until commit and reserves the numbers: gap-free, never overlapping),
        insert the events numbered from it, upsert the checkpoint and position, add the
        outbox rows; notify the run's waiters if it has ended."""
        count = len(events)
        # A step that saves a checkpoint made progress: the poison-run guard starts again.
        reset = ", resume_attempts = 0" if checkpoint is not None else ""
        args: list[Any] = [execution_id, account_id, count]
        clauses = [
            f"seq AS (UPDATE executions SET last_event_seq = last_event_seq + $3{reset}"
            " WHERE id = $1 AND account_id = $2 RETURNING last_event_seq, status)",
            # Events written to a run whose status is final are its last ones (the runner
            # writes them with that status, in ``_set``; any appended later still notify):
            # its waiters, in every process, wake on commit and find the run whole.
            f"notice AS (SELECT pg_notify('{ENDED_CHANNEL}', $1) FROM seq"
            f" WHERE seq.status IN {_FINAL})",
        ]
        if events:
            args += [
                [e.type for e in events],
                [jsontext.dumps(dict(e.data)) for e in events],
                [e.time or now for e in events],
            ]
            clauses.append(
                "events AS (INSERT INTO execution_events"
                " (execution_id, seq, account_id, type, data, created_at)"
                " SELECT $1, seq.last_event_seq - $3 + x.n, $2, x.type, x.data::json, x.at"
                " FROM seq, unnest($4::text[], $5::text[], $6::timestamptz[])"
                " WITH ORDINALITY AS x(type, data, at, n))"
            )
        if checkpoint is not None:
            base = len(args)
            args += [
                _dump(checkpoint.shared),
                checkpoint.next_node,
                jsontext.dumps(dict(checkpoint.results)),
                now,
                jsontext.dumps(dict(checkpoint.resume)),
            ]
            s, n, r, u, m = (f"${base + i}" for i in range(1, 6))
            clauses.append(
                "saved AS (INSERT INTO checkpoints (execution_id, account_id, shared, next_node,"
                f" results, updated_at, resume) SELECT $1, $2, {s}::json, {n}, {r}::json, {u},"
                f" {m}::json FROM seq ON CONFLICT (execution_id) DO UPDATE SET"
                " shared = excluded.shared, next_node = excluded.next_node,"
                " results = excluded.results, updated_at = excluded.updated_at,"
                " resume = excluded.resume)"
            )
        if position is not None:
            args += [position.get("progress"), position.get("current_node")]
            p, c = f"${len(args) - 1}", f"${len(args)}"
            clauses.append(
                "placed AS (INSERT INTO execution_positions (execution_id, progress,"
                f" current_node) SELECT $1, {p}::float8, {c}::text FROM seq"
                " ON CONFLICT (execution_id) DO UPDATE SET"
                " progress = COALESCE(excluded.progress, execution_positions.progress),"
                " current_node = COALESCE(excluded.current_node,"
                " execution_positions.current_node))"
            )
        if outbox:
            args.append(now)
            stamp = f"${len(args)}"
            args.extend(_outbox_args(account_id, outbox, now))
            clauses.append(_outbox_clause("seq", "$2", "$1", stamp, len(args) - 3))
        # A read-only WITH clause runs only when referenced: the notice is joined in.
        sql = f"WITH {', '.join(clauses)} SELECT last_event_seq FROM seq LEFT JOIN notice ON true"
        last = await self._pg.fetchval(sql, *args)
        if last is None:
            raise NotFound("execution not found", account_id=account_id, execution_id=execution_id)
        first = last - count + 1
        return [
            ExecutionEvent(execution_id, account_id, first + i, e.type, dict(e.data), e.time or now)
            for i, e in enumerate(events)
        ]

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
        """Take (or, with ``renew``, extend) ``owner``'s lease; ``Conflict`` if another holds
        it. A free lease is one nobody holds, an expired one, or the owner's own."""
        if renew:
            free, args = "lease_owner = $3", [execution_id, account_id, owner, until]
        else:
            free = "(lease_owner IS NULL OR lease_expires_at <= $5 OR lease_owner = $3)"
            args = [execution_id, account_id, owner, until, now]
        row = await self._pg.fetchrow(
            f"UPDATE executions SET lease_owner = $3, lease_expires_at = $4"
            f" WHERE id = $1 AND account_id = $2 AND {free} RETURNING {_RETURNING}",
            *args,
        )
        if row is None:
            current = await self.get(account_id, execution_id)
            raise Conflict("execution is leased", lease_owner=current.lease_owner)
        return _execution(row)

    async def release_lease(self, account_id: str, execution_id: str, *, owner: str) -> None:
        status = await self._pg.execute(
            "UPDATE executions SET lease_owner = NULL, lease_expires_at = NULL"
            " WHERE id = $1 AND account_id = $2 AND lease_owner = $3",
            execution_id,
            account_id,
            owner,
        )
        if status == "UPDATE 0":
            await self.get(account_id, execution_id)  # NotFound; else not ours: a no-op
