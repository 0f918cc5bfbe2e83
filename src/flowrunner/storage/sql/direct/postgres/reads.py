"""``PgFlows`` and ``PgSecrets``: the reads every run makes, as prepared statements on
``DirectPostgres``.

A run reads its flow and the first page of its account's secrets; here each is one round trip
with no statement to build and compile. Everything else is the SQLAlchemy implementation's.
"""

from __future__ import annotations

from flowrunner import jsontext
from flowrunner.errors import NotFound
from flowrunner.storage.pagination import clamp_limit, encode_cursor
from flowrunner.storage.protocols import DEFAULT_LIMIT
from flowrunner.storage.records import Clock, Flow, Page, Secret
from flowrunner.storage.sql.database import Database
from flowrunner.storage.sql.direct.postgres.connection import DirectPostgres
from flowrunner.storage.sql.flows import SqlFlows
from flowrunner.storage.sql.secrets import SqlSecrets

_FLOW = (
    "SELECT id, account_id, name, description, tags, current_version, created_at, updated_at,"
    " deleted_at FROM flows WHERE id = $1 AND account_id = $2"
)
_LIVE_FLOW = f"{_FLOW} AND deleted_at IS NULL"
_SECRETS = (
    "SELECT account_id, key, ciphertext, key_id, metadata, created_at, updated_at"
    " FROM secrets WHERE account_id = $1 ORDER BY key LIMIT $2"
)


class PgFlows(SqlFlows):
    def __init__(self, db: Database, clock: Clock, direct: DirectPostgres) -> None:
        super().__init__(db, clock)
        self._pg = direct

    async def get(self, account_id: str, flow_id: str, *, include_deleted: bool = False) -> Flow:
        sql = _FLOW if include_deleted else _LIVE_FLOW
        r = await self._pg.fetchrow(sql, flow_id, account_id, write=False)
        if r is None:
            raise NotFound("flow not found", account_id=account_id, flow_id=flow_id)
        tags = tuple(jsontext.loads(r[4]))
        return Flow(r[0], r[1], r[2], r[3], tags, r[5], r[6], r[7], r[8])


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
        items = [
            Secret(r[0], r[1], bytes(r[2]), r[3], jsontext.loads(r[4]), r[5], r[6])
            for r in rows[:size]
        ]
        return Page(items, encode_cursor(items[-1].key) if len(rows) > size else None)
