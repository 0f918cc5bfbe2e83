"""``DirectFlows`` and ``DirectSecrets``: the reads every run makes, in plain SQL on
``DirectSqlite``.

A run reads its flow and the first page of its account's secrets; on this path they are one
hop each with no statement to build and compile (a third of the read's cost through
SQLAlchemy Core). Everything else is the SQLAlchemy implementation's.
"""

from __future__ import annotations

import sqlite3

from flowrunner.errors import NotFound
from flowrunner.storage.pagination import clamp_limit
from flowrunner.storage.protocols import DEFAULT_LIMIT
from flowrunner.storage.records import Clock, Flow, Page, Secret
from flowrunner.storage.sql.database import Database
from flowrunner.storage.sql.direct.connection import DirectSqlite
from flowrunner.storage.sql.direct.rows import SELECT_FLOWS, SELECT_SECRETS, SQLITE_ROWS
from flowrunner.storage.sql.flows import SqlFlows
from flowrunner.storage.sql.secrets import SqlSecrets

_FLOW = f"{SELECT_FLOWS} WHERE id = ? AND account_id = ?"
_SECRETS = f"{SELECT_SECRETS} WHERE account_id = ? ORDER BY key LIMIT ?"


class DirectFlows(SqlFlows):
    def __init__(self, db: Database, clock: Clock, direct: DirectSqlite) -> None:
        super().__init__(db, clock)
        self._direct = direct

    async def get(self, account_id: str, flow_id: str, *, include_deleted: bool = False) -> Flow:
        found = await self._direct.read(lambda c: _flow(c, account_id, flow_id, include_deleted))
        if found is None:
            raise NotFound("flow not found", account_id=account_id, flow_id=flow_id)
        return found


class DirectSecrets(SqlSecrets):
    def __init__(self, db: Database, clock: Clock, direct: DirectSqlite) -> None:
        super().__init__(db, clock)
        self._direct = direct

    async def list(
        self,
        account_id: str,
        *,
        limit: int = DEFAULT_LIMIT,
        cursor: str | None = None,
        key_prefix: str = "",
    ) -> Page[Secret]:
        if cursor is not None or key_prefix:  # not what a run asks for
            return await super().list(account_id, limit=limit, cursor=cursor, key_prefix=key_prefix)
        size = clamp_limit(limit)
        return await self._direct.read(lambda c: _first_secrets(c, account_id, size))


def _flow(
    conn: sqlite3.Connection, account_id: str, flow_id: str, include_deleted: bool
) -> Flow | None:
    sql = _FLOW if include_deleted else f"{_FLOW} AND deleted_at IS NULL"
    row = conn.execute(sql, (flow_id, account_id)).fetchone()
    return None if row is None else SQLITE_ROWS.flow(row)


def _first_secrets(conn: sqlite3.Connection, account_id: str, limit: int) -> Page[Secret]:
    rows = conn.execute(_SECRETS, (account_id, limit + 1)).fetchall()
    return SQLITE_ROWS.secrets_page(rows, limit)
