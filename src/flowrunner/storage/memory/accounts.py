"""Accounts and API tokens in memory."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from flowrunner.errors import Conflict, NotFound
from flowrunner.storage.memory.state import MemoryState, page_by_time
from flowrunner.storage.protocols import DEFAULT_LIMIT
from flowrunner.storage.records import Account, ApiToken, Page, new_id


class MemoryAccounts:
    def __init__(self, state: MemoryState) -> None:
        self._s = state

    async def create(self, username: str, password_hash: str, *, is_admin: bool = False) -> Account:
        async with self._s.lock:
            if any(a.username == username for a in self._s.accounts.values()):
                raise Conflict(f"username {username!r} is taken", username=username)
            now = self._s.clock()
            account = Account(new_id(), username, password_hash, is_admin, False, now, now)
            self._s.accounts[account.id] = account
            return account

    async def get(self, account_id: str) -> Account:
        try:
            return self._s.accounts[account_id]
        except KeyError:
            raise NotFound("account not found", account_id=account_id) from None

    async def get_by_username(self, username: str) -> Account:
        for account in self._s.accounts.values():
            if account.username == username:
                return account
        raise NotFound("account not found", username=username)

    async def update(
        self,
        account_id: str,
        *,
        password_hash: str | None = None,
        is_admin: bool | None = None,
        disabled: bool | None = None,
    ) -> Account:
        async with self._s.lock:
            account = await self.get(account_id)
            account = replace(
                account,
                password_hash=account.password_hash if password_hash is None else password_hash,
                is_admin=account.is_admin if is_admin is None else is_admin,
                disabled=account.disabled if disabled is None else disabled,
                updated_at=self._s.clock(),
            )
            self._s.accounts[account_id] = account
            return account

    async def admin_list(
        self,
        *,
        limit: int = DEFAULT_LIMIT,
        cursor: str | None = None,
        username_contains: str | None = None,
    ) -> Page[Account]:
        needle = (username_contains or "").lower()
        rows = [a for a in self._s.accounts.values() if needle in a.username.lower()]
        return page_by_time(rows, limit=limit, cursor=cursor, key=lambda a: (a.created_at, a.id))


class MemoryTokens:
    def __init__(self, state: MemoryState) -> None:
        self._s = state

    async def create(
        self,
        account_id: str,
        *,
        name: str,
        prefix: str,
        token_hash: str,
        expires_at: datetime | None = None,
    ) -> ApiToken:
        async with self._s.lock:
            if account_id not in self._s.accounts:
                raise NotFound("account not found", account_id=account_id)
            if any(t.token_hash == token_hash for t in self._s.tokens.values()):
                raise Conflict("token hash already exists")
            token = ApiToken(
                new_id(),
                account_id,
                name,
                prefix,
                token_hash,
                self._s.clock(),
                expires_at=expires_at,
            )
            self._s.tokens[token.id] = token
            return token

    async def get_by_hash(self, token_hash: str) -> ApiToken:
        for token in self._s.tokens.values():
            if token.token_hash == token_hash:
                return token
        raise NotFound("token not found")

    async def get(self, account_id: str, token_id: str) -> ApiToken:
        token = self._s.tokens.get(token_id)
        if token is None or token.account_id != account_id:
            raise NotFound("token not found", account_id=account_id, token_id=token_id)
        return token

    async def list(
        self, account_id: str, *, limit: int = DEFAULT_LIMIT, cursor: str | None = None
    ) -> Page[ApiToken]:
        rows = [t for t in self._s.tokens.values() if t.account_id == account_id]
        return page_by_time(rows, limit=limit, cursor=cursor, key=lambda t: (t.created_at, t.id))

    async def touch(self, account_id: str, token_id: str) -> None:
        async with self._s.lock:
            token = await self.get(account_id, token_id)
            self._s.tokens[token_id] = replace(token, last_used_at=self._s.clock())

    async def revoke(self, account_id: str, token_id: str) -> ApiToken:
        async with self._s.lock:
            token = await self.get(account_id, token_id)
            if token.revoked_at is None:
                token = replace(token, revoked_at=self._s.clock())
                self._s.tokens[token_id] = token
            return token
