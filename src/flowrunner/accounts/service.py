"""Accounts and authentication: passwords, API tokens, admin actions, brute-force limits.

Every outcome that matters for security is written to the audit log. Error messages never
say whether a username exists: unknown user, wrong password and disabled account all read
"invalid username or password" and take the same time (see ``PasswordHasher.burn``).
Successful Basic authentications are not audited one by one (that would be one record per
API request); explicit logins and every failure are.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import NoReturn, Protocol

from pydantic import SecretStr

from flowrunner.accounts.limiter import LoginLimiter
from flowrunner.accounts.passwords import PasswordHasher, check_password_rules
from flowrunner.accounts.tokens import (
    IssuedToken,
    display_prefix,
    generate_token,
    hash_token,
    looks_like_token,
)
from flowrunner.accounts.verified import VerifiedCache
from flowrunner.audit import AuditLog, actions
from flowrunner.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthenticated
from flowrunner.storage.protocols import DEFAULT_LIMIT, MAX_LIMIT, Store
from flowrunner.storage.records import Account, ApiToken, Clock, Page, utcnow

MAX_USERNAME_LENGTH = 64
USERNAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{2,63}$")
MAX_TOKEN_NAME = 100
BAD_CREDENTIALS = "invalid username or password"
LOGIN_TOKEN_NAME = "login"
"""The name of the tokens ``POST /login`` issues: the account's login sessions."""


class AdminSettings(Protocol):
    """What ``ensure_admin_from_env`` reads (``flowrunner.config.Settings`` fits)."""

    @property
    def admin_username(self) -> str | None: ...
    @property
    def admin_password(self) -> SecretStr | None: ...


@dataclass(frozen=True, slots=True)
class _Policy:
    login_token_ttl: timedelta
    touch_interval: timedelta


class AccountService:
    def __init__(
        self,
        store: Store,
        audit: AuditLog,
        limiter: LoginLimiter,
        *,
        hasher: PasswordHasher | None = None,
        clock: Clock = utcnow,
        login_token_ttl: timedelta = timedelta(hours=1),
        touch_interval: timedelta = timedelta(minutes=1),
        verified: VerifiedCache | None = None,
    ) -> None:
        self._store = store
        self._audit = audit
        self._limiter = limiter
        self._hasher = hasher or PasswordHasher()
        self._clock = clock
        self._policy = _Policy(login_token_ttl, touch_interval)
        self._verified = verified if verified is not None else VerifiedCache()

    # --- accounts ------------------------------------------------------------------------

    async def create_account(
        self, username: str, password: str, *, is_admin: bool = False, actor: Account | None = None
    ) -> Account:
        """A new account. ``actor`` None means a trusted caller (CLI, first start)."""
        if actor is not None and not actor.is_admin:
            raise Forbidden("only admins create accounts")
        if not USERNAME_PATTERN.match(username):
            raise InvalidInput(
                "username must be 3-64 characters: letters, digits and _ . @ -, "
                "starting with a letter or digit"
            )
        check_password_rules(password)
        account = await self._store.accounts.create(
            username, await self._hasher.hash(password), is_admin=is_admin
        )
        await self._audit.record(
            actions.ACCOUNT_CREATED,
            account_id=account.id,
            actor_id=actor.id if actor else None,
            target=account.id,
            details={"username": username, "is_admin": is_admin},
        )
        return account

    async def get_account(self, actor: Account, account_id: str) -> Account:
        """An account as ``actor`` may see it: itself, or any account for an admin."""
        if account_id in ("me", actor.id):
            return await self._store.accounts.get(actor.id)
        if not actor.is_admin:
            raise NotFound("account not found", account_id=account_id)
        return await self._store.accounts.get(account_id)

    async def change_password(
        self,
        account: Account,
        old: str,
        new: str,
        *,
        current_token: str | None = None,
        revoke_tokens: bool = False,
    ) -> int:
        """Set a new password and end the account's other login sessions (the tokens ``POST
        /login`` issued): whoever knew the old password must not keep a session made with it.
        API tokens stay unless ``revoke_tokens``; ``current_token`` (the raw token of the
        request, if any) always stays. Returns how many tokens were revoked."""
        current = await self._store.accounts.get(account.id)
        if not await self._hasher.verify(current.password_hash, old):
            raise Forbidden("the current password is wrong")
        check_password_rules(new)
        await self._store.accounts.update(account.id, password_hash=await self._hasher.hash(new))
        await self._audit.record(
            actions.PASSWORD_CHANGED, account_id=account.id, actor_id=account.id, target=account.id
        )
        keep = hash_token(current_token) if current_token else None
        revoked = 0
        for token in await self._usable_tokens(account):
            if token.token_hash == keep or (token.name != LOGIN_TOKEN_NAME and not revoke_tokens):
                continue
            await self._store.tokens.revoke(account.id, token.id)
            await self._audit.record(
                actions.TOKEN_REVOKED,
                account_id=account.id,
                actor_id=account.id,
                target=token.id,
                details={"reason": "password_changed"},
            )
            revoked += 1
        return revoked

    async def _usable_tokens(self, account: Account) -> list[ApiToken]:
        now = self._clock()
        found: list[ApiToken] = []
        cursor: str | None = None
        while True:
            page = await self._store.tokens.list(account.id, limit=MAX_LIMIT, cursor=cursor)
            found.extend(token for token in page.items if token.is_usable(now))
            if page.next_cursor is None:
                return found
            cursor = page.next_cursor

    async def admin_list(
        self,
        actor: Account,
        *,
        cursor: str | None = None,
        limit: int = DEFAULT_LIMIT,
        username_contains: str | None = None,
    ) -> Page[Account]:
        _require_admin(actor)
        return await self._store.accounts.admin_list(
            limit=limit, cursor=cursor, username_contains=username_contains
        )

    async def admin_set_disabled(self, actor: Account, account_id: str, disabled: bool) -> Account:
        _require_admin(actor)
        if account_id == actor.id and disabled:
            raise InvalidInput("an admin cannot disable their own account")
        account = await self._store.accounts.update(account_id, disabled=disabled)
        await self._audit.record(
            actions.ACCOUNT_DISABLED if disabled else actions.ACCOUNT_ENABLED,
            account_id=account.id,
            actor_id=actor.id,
            target=account.id,
        )
        return account

    async def ensure_admin_from_env(self, settings: AdminSettings) -> Account | None:
        """Create the configured admin if no account has that username yet (first start).

        An existing account is left alone: the env var must not reset a password that was
        changed since, nor silently promote an existing user.
        """
        if not settings.admin_username or settings.admin_password is None:
            return None
        try:
            return await self._store.accounts.get_by_username(settings.admin_username)
        except NotFound:
            pass
        password = settings.admin_password.get_secret_value()
        try:
            return await self.create_account(settings.admin_username, password, is_admin=True)
        except Conflict:
            # Another server process starting at the same time created it first.
            return await self._store.accounts.get_by_username(settings.admin_username)

    # --- authentication ------------------------------------------------------------------

    async def authenticate_password(self, username: str, password: str, *, client: str) -> Account:
        """The account for these credentials; ``RateLimited`` before checking anything when
        this username/client has failed too often, ``Unauthenticated`` otherwise."""
        # No account has a longer name; cutting it keeps attacker-sized strings out of the
        # limiter's memory and the audit log.
        username = username[:MAX_USERNAME_LENGTH]
        attempt = self._limiter.attempt(username, client)
        try:
            account = await self._store.accounts.get_by_username(username)
        except NotFound:
            await self._hasher.burn(password)
            await self._failed(username, client, None, "unknown username")
        if not (
            self._verified.hit(account, password)
            or await self._hasher.verify(account.password_hash, password)
        ):
            await self._failed(username, client, account, "wrong password")
        if account.disabled:
            await self._failed(username, client, account, "account disabled")
        self._limiter.succeeded(attempt)
        if self._hasher.needs_rehash(account.password_hash):
            # Parameters were raised since this hash was made: upgrade it while we have the
            # plaintext, the only moment that is possible.
            new_hash = await self._hasher.hash(password)
            account = await self._store.accounts.update(account.id, password_hash=new_hash)
        self._verified.add(account, password)
        return account

    async def authenticate_token(self, raw_token: str) -> Account:
        if not looks_like_token(raw_token):
            raise Unauthenticated("invalid token")
        try:
            token = await self._store.tokens.get_by_hash(hash_token(raw_token))
        except NotFound:
            raise Unauthenticated("invalid token") from None
        now = self._clock()
        if not token.is_usable(now):
            raise Unauthenticated("token expired or revoked")
        account = await self._store.accounts.get(token.account_id)
        if account.disabled:
            raise Unauthenticated("invalid token")
        # last_used_at is informational; writing it on every request would turn each read
        # into a write, so it is refreshed at most once per touch_interval.
        if token.last_used_at is None or now - token.last_used_at >= self._policy.touch_interval:
            await self._store.tokens.touch(token.account_id, token.id)
        return account

    async def login(self, username: str, password: str, *, client: str) -> IssuedToken:
        """Exchange credentials for a short-lived token (``POST /api/v1/login``)."""
        account = await self.authenticate_password(username, password, client=client)
        issued = await self._issue(account, LOGIN_TOKEN_NAME, self._policy.login_token_ttl)
        await self._audit.record(
            actions.LOGIN,
            account_id=account.id,
            actor_id=account.id,
            target=username,
            details={"client": client, "token_id": issued.record.id},
        )
        return issued

    async def _failed(
        self, username: str, client: str, account: Account | None, reason: str
    ) -> NoReturn:
        await self._audit.record(
            actions.LOGIN,
            account_id=account.id if account else None,
            actor_id=None,
            target=username,
            outcome="failed",
            details={"client": client, "reason": reason},
        )
        raise Unauthenticated(BAD_CREDENTIALS)

    # --- tokens --------------------------------------------------------------------------

    async def create_token(
        self, account: Account, name: str, *, expires_in: timedelta | None = None
    ) -> IssuedToken:
        if not name.strip() or len(name) > MAX_TOKEN_NAME:
            raise InvalidInput(f"token name must be 1-{MAX_TOKEN_NAME} characters")
        if expires_in is not None and expires_in <= timedelta(0):
            raise InvalidInput("token expiry must be in the future")
        issued = await self._issue(account, name, expires_in)
        await self._audit.record(
            actions.TOKEN_CREATED,
            account_id=account.id,
            actor_id=account.id,
            target=issued.record.id,
            details={"name": name, "prefix": issued.record.prefix},
        )
        return issued

    async def list_tokens(
        self, account: Account, *, cursor: str | None = None, limit: int = DEFAULT_LIMIT
    ) -> Page[ApiToken]:
        return await self._store.tokens.list(account.id, limit=limit, cursor=cursor)

    async def get_token(self, account: Account, token_id: str) -> ApiToken:
        return await self._store.tokens.get(account.id, token_id)

    async def revoke_token(self, account: Account, token_id: str) -> ApiToken:
        token = await self._store.tokens.revoke(account.id, token_id)
        await self._audit.record(
            actions.TOKEN_REVOKED, account_id=account.id, actor_id=account.id, target=token_id
        )
        return token

    async def _issue(self, account: Account, name: str, ttl: timedelta | None) -> IssuedToken:
        raw = generate_token()
        record = await self._store.tokens.create(
            account.id,
            name=name,
            prefix=display_prefix(raw),
            token_hash=hash_token(raw),
            expires_at=self._clock() + ttl if ttl is not None else None,
        )
        return IssuedToken(raw, record, account)


def _require_admin(actor: Account) -> None:
    if not actor.is_admin:
        raise Forbidden("admin only")
