"""Models of login, accounts and API tokens."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from flowrunner.accounts import IssuedToken
from flowrunner.api.schemas import RequestModel, ResponseModel
from flowrunner.storage import Account, ApiToken

# Length bounds only; the account service owns the real rules (pattern, minimum length).
USERNAME = Field(min_length=1, max_length=64)
PASSWORD = Field(min_length=1, max_length=1024)


class LoginRequest(RequestModel):
    username: str = USERNAME
    password: str = PASSWORD


class LoginResponse(ResponseModel):
    """As in the original (``token``, ``account_id``, ``username``), plus the expiry."""

    token: str
    account_id: str
    username: str
    expires_at: datetime | None

    @classmethod
    def of(cls, issued: IssuedToken) -> LoginResponse:
        return cls(
            token=issued.token,
            account_id=issued.account.id,
            username=issued.account.username,
            expires_at=issued.record.expires_at,
        )


class AccountCreate(RequestModel):
    """Admins create regular accounts; admins themselves come from the CLI or the env."""

    username: str = USERNAME
    password: str = PASSWORD


class AccountPatch(RequestModel):
    disabled: bool


class PasswordChange(RequestModel):
    old_password: str = PASSWORD
    new_password: str = PASSWORD
    revoke_tokens: bool = Field(
        default=False,
        description="also revoke the account's API tokens (login sessions always are), "
        "except the token making this request",
    )


class AccountOut(ResponseModel):
    id: str
    username: str
    is_admin: bool
    disabled: bool
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, account: Account) -> AccountOut:
        return cls(
            id=account.id,
            username=account.username,
            is_admin=account.is_admin,
            disabled=account.disabled,
            created_at=account.created_at,
            updated_at=account.updated_at,
        )


class AccountPage(ResponseModel):
    items: list[AccountOut]
    next_cursor: str | None


class TokenCreate(RequestModel):
    name: str = Field(min_length=1, max_length=100)
    expires_in_seconds: int | None = Field(
        default=None, ge=1, le=10 * 365 * 24 * 3600, description="none = never expires"
    )


class TokenOut(ResponseModel):
    id: str
    name: str
    prefix: str = Field(description="the first characters, to recognise the token")
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None

    @classmethod
    def of(cls, token: ApiToken) -> TokenOut:
        return cls(
            id=token.id,
            name=token.name,
            prefix=token.prefix,
            created_at=token.created_at,
            last_used_at=token.last_used_at,
            expires_at=token.expires_at,
            revoked_at=token.revoked_at,
        )


class TokenCreated(TokenOut):
    token: str = Field(description="the secret token; shown only in this response")

    @classmethod
    def of_issued(cls, issued: IssuedToken) -> TokenCreated:
        return cls(**TokenOut.of(issued.record).model_dump(), token=issued.token)


class TokenPage(ResponseModel):
    items: list[TokenOut]
    next_cursor: str | None


class OnFailure(RequestModel):
    flow: str = Field(min_length=1, max_length=200, description="A flow's name or id.")


class AccountSettings(RequestModel):
    """The account's settings. ``on_failure``: the flow started when a run of a flow without
    its own ``metadata.on_failure`` fails (null: none)."""

    on_failure: OnFailure | None = None


class AccountSettingsOut(ResponseModel):
    on_failure: dict[str, str] | None

    @classmethod
    def of(cls, flow: str | None) -> AccountSettingsOut:
        return cls(on_failure=None if flow is None else {"flow": flow})
