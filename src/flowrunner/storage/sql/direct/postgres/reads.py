"""``PgFlows`` and ``PgSecrets``: the reads every run makes, as prepared statements on
``DirectPostgres``.

A run reads its flow and the first page of its account's secrets; here each is one round trip
with no statement to build and compile. Everything else is the SQLAlchemy implementation's.
"""

from __future__ import annotations

from flowrunner.errors import NotFound
from flowrunner.storage.pagination import clamp_limit
from flowrunner.storage.protocols import DEFAULT_LIMIT
from flowrunner.storage.records import Clock, Flow, Page, Secret
from flowrunner.storage.sql.database import Database
from flowrunner.storage.sql.direct.postgres.connection import DirectPostgres
from flowrunner.storage.sql.direct.rows import POSTGRES_ROWS, SELECT_FLOWS, SELECT_SECRETS
from flowrunner.storage.sql.flows import SqlFlows
from flowrunner.storage.sql.secrets import SqlSecrets

_FLOW = f"{SELECT_FLOWS} WHERE id = $1 AND account_id = $2"
_LIVE_FLOW = f"{_FLOW} AND deleted_at IS NULL"
_SECRETS = f"{SELECT_SECRETS} WHERE account_id = $1 ORDER BY key LIMIT $2"


class PgFlows(SqlFlows):
    def __init__(self, db: Database, clock: Clock, direct: DirectPostgres) -> None:
        super().__init__(db, clock)
        self._pg = direct

    async def get(self, account_id: str, flow_id: str, *, include_deleted: bool = False) -> Flow:
        sql = _FLOW if include_deleted else _LIVE_FLOW
        r = await self._pg.fetchrow(sql, flow_id, account_id, write=False)
        if r is None:
            raise NotFound("flow not found", account_id=account_id, flow_id=flow_id)
        return POSTGRES_ROWS.flow(r)


class PgSecrets(SqlSecrets):
    def __init__(self, db: Database, clock: Clock, direct: DirectPostgres) -> None:
        super().__init__(db, clock)
        self._pg = direct

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
        rows = await self._pg.fetch(_SECRETS, account_id, size + 1)
        return POSTGRES_ROWS.secrets_page(rows, size)
