"""Request dependencies: the services built by ``create_app``, the caller's account, paging.

Authentication accepts HTTP Basic (username:password) and Bearer API tokens. Both schemes are
declared with ``auto_error=False`` so a missing or malformed header reaches our own 401 (in
the error envelope, with ``WWW-Authenticate``) instead of FastAPI's default body.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.security import (
    HTTPAuthorizationCredentials,
    HTTPBasic,
    HTTPBasicCredentials,
    HTTPBearer,
)

from flowrunner.accounts import AccountService
from flowrunner.api.input_guard import check_text
from flowrunner.api.token_cache import TokenCache
from flowrunner.audit import AuditLog
from flowrunner.config import Settings
from flowrunner.custom_types import CustomTypes
from flowrunner.errors import Forbidden, Unauthenticated
from flowrunner.flows import FlowRegistry
from flowrunner.plugins.manager import PluginManager
from flowrunner.secrets import SecretVault
from flowrunner.storage import Account, Store
from flowrunner.storage.protocols import DEFAULT_LIMIT, MAX_LIMIT
from flowrunner.triggers import TriggerService


@dataclass(frozen=True, slots=True)
class Services:
    """Everything a route may use, built once per app in the composition root."""

    settings: Settings
    store: Store
    audit: AuditLog
    accounts: AccountService
    vault: SecretVault
    flows: FlowRegistry
    triggers: TriggerService
    node_types: CustomTypes
    """Accounts' own JavaScript node types, and the registry of one account."""
    tokens: TokenCache = field(default_factory=TokenCache)
    """Bearer token → account for a few seconds; cleared by revokes, disables, password changes."""
    plugins: PluginManager = field(default_factory=PluginManager)
    """Node types from plugins, and the registry flows are checked and compiled against."""


async def services(request: Request) -> Services:
    found: Services = request.app.state.services
    return found


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


_basic = HTTPBasic(auto_error=False, description="username:password")
_bearer = HTTPBearer(auto_error=False, description="an API token (frt_...)")


async def current_account(
    request: Request,
    basic: Annotated[HTTPBasicCredentials | None, Depends(_basic)],
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Account:
    # Off the app, not through ``Depends(services)``: every authenticated request solves
    # this, and each sub-dependency is another round of FastAPI's per-request solver.
    svc: Services = request.app.state.services
    if bearer is not None:
        return await svc.tokens.resolve(bearer.credentials, svc.accounts.authenticate_token)
    if basic is not None:
        # Decoded from base64 here, after the request-wide checks: a NUL must not reach a
        # username lookup (PostgreSQL refuses it in text).
        check_text(basic.username, ("header", "authorization"))
        check_text(basic.password, ("header", "authorization"))
        return await svc.accounts.authenticate_password(
            basic.username, basic.password, client=client_address(request)
        )
    raise Unauthenticated("authentication required: HTTP Basic or a Bearer token")


async def admin_account(account: Annotated[Account, Depends(current_account)]) -> Account:
    if not account.is_admin:
        raise Forbidden("admin only")
    return account


BasicCredentials = Annotated[HTTPBasicCredentials | None, Depends(_basic)]
BearerCredentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
CurrentAccount = Annotated[Account, Depends(current_account)]
AdminAccount = Annotated[Account, Depends(admin_account)]
Svc = Annotated[Services, Depends(services)]


@dataclass(frozen=True, slots=True)
class PageParams:
    limit: int
    cursor: str | None


async def page_params(
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="items per page")] = DEFAULT_LIMIT,
    cursor: Annotated[
        str | None, Query(max_length=512, description="next_cursor of the previous page")
    ] = None,
) -> PageParams:
    return PageParams(limit, cursor)


Paging = Annotated[PageParams, Depends(page_params)]
