"""``/api/v1/accounts``: an account manages itself; admins create, list and disable accounts.

``{account_id}`` may be ``me``. A non-admin asking for another account gets 404 (its id is
not theirs to confirm); admin-only routes answer 403 to everyone else.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response

from flowrunner.api.deps import AdminAccount, CurrentAccount, Paging, Svc
from flowrunner.api.routes.executions import Runs
from flowrunner.api.schemas.accounts import (
    AccountCreate,
    AccountOut,
    AccountPage,
    AccountPatch,
    AccountSettings,
    AccountSettingsOut,
    PasswordChange,
)
from flowrunner.api.schemas.common import COMMON_ERRORS, error_responses
from flowrunner.audit import actions

router = APIRouter(prefix="/accounts", tags=["accounts"], responses=COMMON_ERRORS)
AccountId = Annotated[str, Path(max_length=64, description="an account id, or `me`")]
ADMIN_ONLY = error_responses(403, 409)


@router.get("/me", response_model=AccountOut, summary="The calling account")
async def me(account: CurrentAccount) -> AccountOut:
    return AccountOut.of(account)


@router.get("/me/settings", response_model=AccountSettingsOut, summary="The account's settings")
async def get_settings(account: CurrentAccount, runs: Runs) -> AccountSettingsOut:
    return AccountSettingsOut.of(await runs.on_failure.default(account.id))


@router.put(
    "/me/settings",
    response_model=AccountSettingsOut,
    responses=error_responses(404),
    summary="Set the account's settings",
)
async def put_settings(
    body: AccountSettings, account: CurrentAccount, runs: Runs, svc: Svc
) -> AccountSettingsOut:
    """``on_failure.flow`` (a flow's name or id, which must exist) is started when a run of a
    flow with no ``metadata.on_failure`` of its own fails; ``null`` clears it."""
    flow = await runs.on_failure.set_default(
        account.id, None if body.on_failure is None else body.on_failure.flow
    )
    await svc.audit.record(
        actions.SETTINGS_CHANGED,
        account_id=account.id,
        actor_id=account.id,
        target=f"account:{account.id}",
        details={"on_failure": flow},
    )
    return AccountSettingsOut.of(flow)


@router.post("/me/password", status_code=204, responses=error_responses(403))
async def change_password(
    body: PasswordChange, account: CurrentAccount, svc: Svc, request: Request
) -> Response:
    """Change the password; the account's other login sessions end (API tokens too with
    ``revoke_tokens``), the token making this request stays."""
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    await svc.accounts.change_password(
        account,
        body.old_password,
        body.new_password,
        current_token=credentials.strip() if scheme.lower() == "bearer" else None,
        revoke_tokens=body.revoke_tokens,
    )
    svc.tokens.clear()  # whatever the change does to the account's tokens, it shows at once
    return Response(status_code=204)


@router.get("", response_model=AccountPage, responses=ADMIN_ONLY, summary="All accounts (admin)")
async def list_accounts(
    admin: AdminAccount,
    svc: Svc,
    paging: Paging,
    username: Annotated[str | None, Query(max_length=64, description="contains")] = None,
) -> AccountPage:
    page = await svc.accounts.admin_list(
        admin, cursor=paging.cursor, limit=paging.limit, username_contains=username
    )
    return AccountPage(items=[AccountOut.of(a) for a in page.items], next_cursor=page.next_cursor)


@router.post(
    "", status_code=201, response_model=AccountOut, responses=ADMIN_ONLY, summary="(admin)"
)
async def create_account(body: AccountCreate, admin: AdminAccount, svc: Svc) -> AccountOut:
    account = await svc.accounts.create_account(body.username, body.password, actor=admin)
    return AccountOut.of(account)


@router.get("/{account_id}", response_model=AccountOut, summary="One account (self, or admin)")
async def get_account(account_id: AccountId, account: CurrentAccount, svc: Svc) -> AccountOut:
    return AccountOut.of(await svc.accounts.get_account(account, account_id))


@router.patch(
    "/{account_id}", response_model=AccountOut, responses=ADMIN_ONLY, summary="Disable (admin)"
)
async def patch_account(
    account_id: AccountId, body: AccountPatch, admin: AdminAccount, svc: Svc
) -> AccountOut:
    target = admin.id if account_id == "me" else account_id
    updated = await svc.accounts.admin_set_disabled(admin, target, body.disabled)
    svc.tokens.clear()  # the disabled account's tokens stop working now, not in a few seconds
    return AccountOut.of(updated)
