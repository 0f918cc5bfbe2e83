"""Accounts and API tokens.

Items::

    ACCOUNT#<id>          / ACCOUNT        the account     gsi1: ACCOUNTS / created+id
    USERNAME#<username>   / USERNAME       uniqueness guard -> account_id
    ACCOUNT#<account>     / TOKEN#<id>     a token         gsi1: ACCOUNT#<a>#TOKENS / created+id
    TOKENHASH#<hash>      / TOKENHASH      uniqueness guard -> account_id, token_id

DynamoDB has no unique constraint besides the primary key, so each unique value owns a guard
item written in the same transaction as the record, conditioned on ``attribute_not_exists``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flowrunner.errors import Conflict, NotFound
from flowrunner.storage.dynamodb.client import ConditionFailed, Table, TransactionCanceled
from flowrunner.storage.dynamodb.codec import opt_ts, parse_ts, time_key, ts
from flowrunner.storage.dynamodb.expr import Expr
from flowrunner.storage.dynamodb.paging import query_page
from flowrunner.storage.protocols import DEFAULT_LIMIT
from flowrunner.storage.records import Account, ApiToken, Clock, Page, new_id

NEW = "attribute_not_exists(pk)"
EXISTS = "attribute_exists(pk)"


def account_pk(account_id: str) -> str:
    return f"ACCOUNT#{account_id}"


def _account(f: dict[str, Any]) -> Account:
    return Account(
        f["id"], f["username"], f["password_hash"], f["is_admin"], f["disabled"],
        parse_ts(f["created_at"]), parse_ts(f["updated_at"]),
    )  # fmt: skip


def _token(f: dict[str, Any]) -> ApiToken:
    return ApiToken(
        f["id"], f["account_id"], f["name"], f["prefix"], f["token_hash"],
        parse_ts(f["created_at"]), opt_ts(f.get("last_used_at")), opt_ts(f.get("expires_at")),
        opt_ts(f.get("revoked_at")),
    )  # fmt: skip


class DynamoAccounts:
    def __init__(self, table: Table, clock: Clock) -> None:
        self._t = table
        self._clock = clock

    async def create(self, username: str, password_hash: str, *, is_admin: bool = False) -> Account:
        now = self._clock()
        account = Account(new_id(), username, password_hash, is_admin, False, now, now)
        item = {
            "pk": account_pk(account.id), "sk": "ACCOUNT", "gsi1pk": "ACCOUNTS",
            "gsi1sk": time_key(now, account.id), "id": account.id, "username": username,
            "password_hash": password_hash, "is_admin": is_admin, "disabled": False,
            "created_at": ts(now), "updated_at": ts(now),
        }  # fmt: skip
        guard = {"pk": f"USERNAME#{username}", "sk": "USERNAME", "account_id": account.id}
        try:
            await self._t.transact([self._t.tx_put(item, NEW), self._t.tx_put(guard, NEW)])
        except TransactionCanceled as exc:
            raise Conflict(f"username {username!r} is taken", username=username) from exc
        return account

    async def get(self, account_id: str) -> Account:
        fields = await self._t.get(account_pk(account_id), "ACCOUNT")
        if fields is None:
            raise NotFound("account not found", account_id=account_id)
        return _account(fields)

    async def get_by_username(self, username: str) -> Account:
        guard = await self._t.get(f"USERNAME#{username}", "USERNAME")
        if guard is None:
            raise NotFound("account not found", username=username)
        return await self.get(guard["account_id"])

    async def update(
        self,
        account_id: str,
        *,
        password_hash: str | None = None,
        is_admin: bool | None = None,
        disabled: bool | None = None,
    ) -> Account:
        expr = Expr().set_fields(
            {"password_hash": password_hash, "is_admin": is_admin, "disabled": disabled}
        )
        expr.set("updated_at", ts(self._clock()))
        try:
            fields = await self._t.update(account_pk(account_id), "ACCOUNT", expr, condition=EXISTS)
        except ConditionFailed:
            raise NotFound("account not found", account_id=account_id) from None
        return _account(fields)

    async def admin_list(
        self,
        *,
        limit: int = DEFAULT_LIMIT,
        cursor: str | None = None,
        username_contains: str | None = None,
    ) -> Page[Account]:
        needle = (username_contains or "").lower()
        return await query_page(
            self._t, index="gsi1", partition="ACCOUNTS", build=_account, limit=limit,
            cursor=cursor, keep=(lambda a: needle in a.username.lower()) if needle else None,
        )  # fmt: skip


class DynamoTokens:
    def __init__(self, table: Table, clock: Clock) -> None:
        self._t = table
        self._clock = clock

    async def create(
        self,
        account_id: str,
        *,
        name: str,
        prefix: str,
        token_hash: str,
        expires_at: datetime | None = None,
    ) -> ApiToken:
        now = self._clock()
        token = ApiToken(new_id(), account_id, name, prefix, token_hash, now, expires_at=expires_at)
        item = {
            "pk": account_pk(account_id), "sk": f"TOKEN#{token.id}",
            "gsi1pk": f"ACCOUNT#{account_id}#TOKENS", "gsi1sk": time_key(now, token.id),
            "id": token.id, "account_id": account_id, "name": name, "prefix": prefix,
            "token_hash": token_hash, "created_at": ts(now),
            "expires_at": ts(expires_at) if expires_at else None,
        }  # fmt: skip
        guard = {
            "pk": f"TOKENHASH#{token_hash}", "sk": "TOKENHASH",
            "account_id": account_id, "token_id": token.id,
        }  # fmt: skip
        actions = [
            self._t.tx_check(account_pk(account_id), "ACCOUNT", EXISTS, Expr()),
            self._t.tx_put(item, NEW),
            self._t.tx_put(guard, NEW),
        ]
        try:
            await self._t.transact(actions)
        except TransactionCanceled as exc:
            if exc.failed(0):
                raise NotFound("account not found", account_id=account_id) from exc
            raise Conflict("token hash already exists") from exc
        return token

    async def get_by_hash(self, token_hash: str) -> ApiToken:
        guard = await self._t.get(f"TOKENHASH#{token_hash}", "TOKENHASH")
        if guard is None:
            raise NotFound("token not found")
        return await self.get(guard["account_id"], guard["token_id"])

    async def get(self, account_id: str, token_id: str) -> ApiToken:
        fields = await self._t.get(account_pk(account_id), f"TOKEN#{token_id}")
        if fields is None:
            raise NotFound("token not found", account_id=account_id, token_id=token_id)
        return _token(fields)

    async def list(
        self, account_id: str, *, limit: int = DEFAULT_LIMIT, cursor: str | None = None
    ) -> Page[ApiToken]:
        return await query_page(
            self._t, index="gsi1", partition=f"ACCOUNT#{account_id}#TOKENS", build=_token,
            limit=limit, cursor=cursor,
        )  # fmt: skip

    async def touch(self, account_id: str, token_id: str) -> None:
        await self._set(account_id, token_id, Expr().set("last_used_at", ts(self._clock())))

    async def revoke(self, account_id: str, token_id: str) -> ApiToken:
        expr = Expr()
        # if_not_exists keeps the first revocation time when revoking twice.
        now = expr.v(ts(self._clock()))
        expr.set_expr("revoked_at", f"if_not_exists({expr.n('revoked_at')}, {now})")
        return await self._set(account_id, token_id, expr)

    async def _set(self, account_id: str, token_id: str, expr: Expr) -> ApiToken:
        try:
            fields = await self._t.update(
                account_pk(account_id), f"TOKEN#{token_id}", expr, condition=EXISTS
            )
        except ConditionFailed:
            raise NotFound("token not found", account_id=account_id, token_id=token_id) from None
        return _token(fields)
