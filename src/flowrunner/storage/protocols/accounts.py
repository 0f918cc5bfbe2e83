"""Accounts and their API tokens.

The rules every backend follows are in ``flowrunner.storage.protocols``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from flowrunner.storage.protocols.limits import DEFAULT_LIMIT
from flowrunner.storage.records import (
    Account,
    ApiToken,
    Page,
)


class AccountStore(Protocol):
    async def create(self, username: str, password_hash: str, *, is_admin: bool = False) -> Account:
        """A new account; ``Conflict`` if the username is taken."""
        ...

    async def get(self, account_id: str) -> Account: ...

    async def get_by_username(self, username: str) -> Account: ...

    async def update(
        self,
        account_id: str,
        *,
        password_hash: str | None = None,
        is_admin: bool | None = None,
        disabled: bool | None = None,
    ) -> Account:
        """Change the given fields (None = leave as is)."""
        ...

    async def admin_list(
        self,
        *,
        limit: int = DEFAULT_LIMIT,
        cursor: str | None = None,
        username_contains: str | None = None,
    ) -> Page[Account]: ...


class TokenStore(Protocol):
    async def create(
        self,
        account_id: str,
        *,
        name: str,
        prefix: str,
        token_hash: str,
        expires_at: datetime | None = None,
    ) -> ApiToken:
        """Store a token's hash; ``Conflict`` if the hash already exists."""
        ...

    async def get_by_hash(self, token_hash: str) -> ApiToken:
        """The token with this hash, whoever owns it (authentication starts here)."""
        ...

    async def get(self, account_id: str, token_id: str) -> ApiToken: ...

    async def list(
        self, account_id: str, *, limit: int = DEFAULT_LIMIT, cursor: str | None = None
    ) -> Page[ApiToken]: ...

    async def touch(self, account_id: str, token_id: str) -> None:
        """Record a use now (``last_used_at``)."""
        ...

    async def revoke(self, account_id: str, token_id: str) -> ApiToken:
        """Mark revoked now; revoking twice keeps the first time."""
        ...
