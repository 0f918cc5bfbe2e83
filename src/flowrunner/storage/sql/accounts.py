"""Accounts and API tokens in SQL."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Row, func, literal, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from flowrunner.errors import Conflict, NotFound
from flowrunner.storage.protocols import DEFAULT_LIMIT
from flowrunner.storage.records import Account, ApiToken, Clock, Page, new_id
from flowrunner.storage.sql.database import Database, columns_of
from flowrunner.storage.sql.paging import time_page
from flowrunner.storage.sql.tables import UTCDateTime, accounts, api_tokens


def _account(r: Row[Any]) -> Account:
    return Account(
        r.id, r.username, r.password_hash, r.is_admin, r.disabled, r.created_at, r.updated_at
    )


def _token(r: Row[Any]) -> ApiToken:
    return ApiToken(
        r.id, r.account_id, r.name, r.prefix, r.token_hash, r.created_at,
        r.last_used_at, r.expires_at, r.revoked_at,
    )  # fmt: skip


class SqlAccounts:
    def __init__(self, db: Database, clock: Clock) -> None:
        self._db, self._clock = db, clock

    async def create(self, username: str, password_hash: str, *, is_admin: bool = False) -> Account:
        now = self._clock()
        account = Account(new_id(), username, password_hash, is_admin, False, now, now)

        async def work(conn: AsyncConnection) -> Account:
            taken = await conn.scalar(select(accounts.c.id).where(accounts.c.username == username))
            if taken is not None:
                raise Conflict(f"username {username!r} is taken", username=username)
            await conn.execute(accounts.insert().values(**columns_of(account)))
            return account

        # The unique index still guards the race between the check and the insert (→ Conflict).
        return await self._db.write(work)

    async def get(self, account_id: str) -> Account:
        return await self._one(accounts.c.id == account_id, account_id=account_id)

    async def get_by_username(self, username: str) -> Account:
        return await self._one(accounts.c.username == username, username=username)

    async def _one(self, where: Any, **context: Any) -> Account:
        row = await self._db.first(select(accounts).where(where))
        if row is None:
            raise NotFound("account not found", **context)
        return _account(row)

    async def update(
        self,
        account_id: str,
        *,
        password_hash: str | None = None,
        is_admin: bool | None = None,
        disabled: bool | None = None,
    ) -> Account:
        changes = {
            k: v
            for k, v in {
                "password_hash": password_hash, "is_admin": is_admin, "disabled": disabled,
            }.items()
            if v is not None
        }  # fmt: skip

        async def work(conn: AsyncConnection) -> Account:
            stmt = (
                update(accounts)
                .where(accounts.c.id == account_id)
                .values(**changes, updated_at=self._clock())
                .returning(*accounts.c)
            )
            row = (await conn.execute(stmt)).first()
            if row is None:
                raise NotFound("account not found", account_id=account_id)
            return _account(row)

        return await self._db.write(work)

    async def admin_list(
        self,
        *,
        limit: int = DEFAULT_LIMIT,
        cursor: str | None = None,
        username_contains: str | None = None,
    ) -> Page[Account]:
        stmt = select(accounts)
        if username_contains:
            stmt = stmt.where(func.lower(accounts.c.username).contains(username_contains.lower()))

        async def work(conn: AsyncConnection) -> Page[Account]:
            return await time_page(
                conn, stmt, accounts, limit=limit, cursor=cursor, record=_account
            )

        return await self._db.read(work)


class SqlTokens:
    def __init__(self, db: Database, clock: Clock) -> None:
        self._db, self._clock = db, clock

    async def create(
        self,
        account_id: str,
        *,
        name: str,
        prefix: str,
        token_hash: str,
        expires_at: datetime | None = None,
    ) -> ApiToken:
        token = ApiToken(
            new_id(), account_id, name, prefix, token_hash, self._clock(), expires_at=expires_at
        )

        async def work(conn: AsyncConnection) -> ApiToken:
            if await conn.scalar(select(accounts.c.id).where(accounts.c.id == account_id)) is None:
                raise NotFound("account not found", account_id=account_id)
            await conn.execute(api_tokens.insert().values(**columns_of(token)))
            return token

        return await self._db.write(work)

    async def get_by_hash(self, token_hash: str) -> ApiToken:
        return await self._one(api_tokens.c.token_hash == token_hash)

    async def get(self, account_id: str, token_id: str) -> ApiToken:
        return await self._one(
            (api_tokens.c.id == token_id) & (api_tokens.c.account_id == account_id)
        )

    async def _one(self, where: Any) -> ApiToken:
        row = await self._db.first(select(api_tokens).where(where))
        if row is None:
            raise NotFound("token not found")
        return _token(row)

    async def list(
        self, account_id: str, *, limit: int = DEFAULT_LIMIT, cursor: str | None = None
    ) -> Page[ApiToken]:
        stmt = select(api_tokens).where(api_tokens.c.account_id == account_id)

        async def work(conn: AsyncConnection) -> Page[ApiToken]:
            return await time_page(
                conn, stmt, api_tokens, limit=limit, cursor=cursor, record=_token
            )

        return await self._db.read(work)

    async def touch(self, account_id: str, token_id: str) -> None:
        await self._set(account_id, token_id, {"last_used_at": self._clock()})

    async def revoke(self, account_id: str, token_id: str) -> ApiToken:
        # coalesce keeps the first revocation time when revoking twice.
        now = self._clock()
        return await self._set(
            account_id,
            token_id,
            {"revoked_at": func.coalesce(api_tokens.c.revoked_at, literal(now, UTCDateTime()))},
        )

    async def _set(self, account_id: str, token_id: str, values: dict[str, Any]) -> ApiToken:
        async def work(conn: AsyncConnection) -> ApiToken:
            stmt = (
                update(api_tokens)
                .where(api_tokens.c.id == token_id, api_tokens.c.account_id == account_id)
                .values(**values)
                .returning(*api_tokens.c)
            )
            row = (await conn.execute(stmt)).first()
            if row is None:
                raise NotFound("token not found", account_id=account_id, token_id=token_id)
            return _token(row)

        return await self._db.write(work)
