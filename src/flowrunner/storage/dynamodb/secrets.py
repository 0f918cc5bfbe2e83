"""Encrypted secrets (the store only ever sees ciphertext).

Items::

    ACCOUNT#<a> / SECRET#<key>    the secret    gsi2: KEYID#<key id> / <account> SEP <key>

Listing an account's secrets is a range of its partition in key order; the key-id index lets
key rotation find every secret encrypted under an old key, across accounts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flowrunner.errors import NotFound
from flowrunner.storage.dynamodb.accounts import EXISTS, account_pk
from flowrunner.storage.dynamodb.client import ConditionFailed, Table
from flowrunner.storage.dynamodb.codec import SEP, dump_json, load_json, parse_ts, ts
from flowrunner.storage.dynamodb.expr import Expr
from flowrunner.storage.dynamodb.paging import SortRange, query_page
from flowrunner.storage.protocols import DEFAULT_LIMIT
from flowrunner.storage.records import Clock, JSONValue, Page, Secret


def _secret(f: dict[str, Any]) -> Secret:
    return Secret(
        f["account_id"], f["key"], f["ciphertext"], f["key_id"], load_json(f["metadata"]),
        parse_ts(f["created_at"]), parse_ts(f["updated_at"]),
    )  # fmt: skip


class DynamoSecrets:
    def __init__(self, table: Table, clock: Clock) -> None:
        self._t = table
        self._clock = clock

    async def put(
        self,
        account_id: str,
        key: str,
        *,
        ciphertext: bytes,
        key_id: str,
        metadata: Mapping[str, JSONValue] | None = None,
    ) -> Secret:
        now = ts(self._clock())
        expr = Expr().set_fields(
            {
                "account_id": account_id, "key": key, "ciphertext": bytes(ciphertext),
                "key_id": key_id, "metadata": dump_json(dict(metadata or {})),
                "gsi2pk": f"KEYID#{key_id}", "gsi2sk": f"{account_id}{SEP}{key}",
                "updated_at": now,
            }
        )  # fmt: skip
        # Create or replace in one write; if_not_exists keeps the first created_at.
        expr.set_expr("created_at", f"if_not_exists({expr.n('created_at')}, {expr.v(now)})")
        fields = await self._t.update(account_pk(account_id), f"SECRET#{key}", expr)
        return _secret(fields)

    async def get(self, account_id: str, key: str) -> Secret:
        fields = await self._t.get(account_pk(account_id), f"SECRET#{key}")
        if fields is None:
            raise NotFound("secret not found", account_id=account_id, key=key)
        return _secret(fields)

    async def delete(self, account_id: str, key: str) -> None:
        try:
            await self._t.delete(account_pk(account_id), f"SECRET#{key}", condition=EXISTS)
        except ConditionFailed:
            raise NotFound("secret not found", account_id=account_id, key=key) from None

    async def list(
        self,
        account_id: str,
        *,
        limit: int = DEFAULT_LIMIT,
        cursor: str | None = None,
        key_prefix: str = "",
    ) -> Page[Secret]:
        return await query_page(
            self._t, partition=account_pk(account_id), build=_secret, limit=limit,
            cursor=cursor, sort=SortRange(prefix=f"SECRET#{key_prefix}"), newest_first=False,
        )  # fmt: skip

    async def admin_list_by_key_id(
        self, key_id: str, *, limit: int = DEFAULT_LIMIT, cursor: str | None = None
    ) -> Page[Secret]:
        return await query_page(
            self._t, index="gsi2", partition=f"KEYID#{key_id}", build=_secret, limit=limit,
            cursor=cursor, newest_first=False,
        )  # fmt: skip
