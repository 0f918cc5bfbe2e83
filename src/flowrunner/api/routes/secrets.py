"""``/api/v1/accounts/{account}/secrets`` (the original's paths; ``{account}`` may be ``me``).

Listings show keys and metadata, never values; reading one value is audited. An admin may
manage another account's secrets (audited with the admin as actor); anyone else asking for
another account gets 404.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from flowrunner.api.deps import AdminAccount, CurrentAccount, Paging, Svc
from flowrunner.api.schemas.common import COMMON_ERRORS, error_responses
from flowrunner.api.schemas.secrets import (
    ImportOut,
    RotationOut,
    SecretCreate,
    SecretImport,
    SecretOut,
    SecretPage,
    SecretPut,
    SecretSaved,
    SecretWithValue,
)
from flowrunner.secrets.masking import short_value_warning
from flowrunner.storage import Account, Secret

router = APIRouter(tags=["secrets"], responses=COMMON_ERRORS)
PREFIX = "/accounts/{account_ref}/secrets"
AccountRef = Annotated[str, Path(max_length=64, description="an account id, or `me`")]
SecretKey = Annotated[str, Path(max_length=128)]


async def _owner(svc: Svc, caller: Account, account_ref: str) -> Account:
    return await svc.accounts.get_account(caller, account_ref)


@router.get(PREFIX, response_model=SecretPage, summary="Secret keys and metadata")
async def list_secrets(
    account_ref: AccountRef,
    caller: CurrentAccount,
    svc: Svc,
    paging: Paging,
    prefix: Annotated[str, Query(max_length=128, description="keys starting with")] = "",
) -> SecretPage:
    owner = await _owner(svc, caller, account_ref)
    page = await svc.vault.list(owner, cursor=paging.cursor, limit=paging.limit, key_prefix=prefix)
    return SecretPage(items=[SecretOut.of(s) for s in page.items], next_cursor=page.next_cursor)


@router.post(PREFIX, status_code=201, response_model=SecretSaved, summary="Create or replace")
async def create_secret(
    account_ref: AccountRef, body: SecretCreate, caller: CurrentAccount, svc: Svc
) -> SecretSaved:
    owner = await _owner(svc, caller, account_ref)
    secret = await svc.vault.put(owner, body.key, body.value, metadata=body.metadata, actor=caller)
    return _saved(secret, body.value)


@router.post(
    PREFIX + "/import",
    response_model=ImportOut,
    summary="Create or replace many secrets, all or nothing",
)
async def import_secrets(
    account_ref: AccountRef, body: SecretImport, caller: CurrentAccount, svc: Svc
) -> ImportOut:
    owner = await _owner(svc, caller, account_ref)
    report = await svc.vault.import_values(owner, body.secrets, actor=caller)
    return ImportOut(
        added=report.added,
        changed=report.changed,
        unchanged=report.unchanged,
        warnings=report.warnings,
    )


@router.put(PREFIX + "/{key}", response_model=SecretSaved, summary="Create or replace")
async def put_secret(
    account_ref: AccountRef, key: SecretKey, body: SecretPut, caller: CurrentAccount, svc: Svc
) -> SecretSaved:
    owner = await _owner(svc, caller, account_ref)
    secret = await svc.vault.put(owner, key, body.value, metadata=body.metadata, actor=caller)
    return _saved(secret, body.value)


def _saved(secret: Secret, value: object) -> SecretSaved:
    warning = short_value_warning(value)
    return SecretSaved(**SecretOut.of(secret).model_dump(), warnings=[warning] if warning else [])


@router.get(PREFIX + "/{key}", response_model=SecretWithValue, summary="Read a value (audited)")
async def get_secret(
    account_ref: AccountRef, key: SecretKey, caller: CurrentAccount, svc: Svc
) -> SecretWithValue:
    owner = await _owner(svc, caller, account_ref)
    secret = await svc.vault.get(owner, key)
    value = await svc.vault.get_value(owner, key, actor=caller)
    return SecretWithValue(**SecretOut.of(secret).model_dump(), value=value)


@router.delete(PREFIX + "/{key}", status_code=204)
async def delete_secret(
    account_ref: AccountRef, key: SecretKey, caller: CurrentAccount, svc: Svc
) -> Response:
    owner = await _owner(svc, caller, account_ref)
    await svc.vault.delete(owner, key, actor=caller)
    return Response(status_code=204)


@router.post(
    "/admin/secrets/rotate-key",
    response_model=RotationOut,
    responses=error_responses(403),
    summary="Re-encrypt every secret under the newest key (admin)",
)
async def rotate_key(admin: AdminAccount, svc: Svc) -> RotationOut:
    return RotationOut(re_encrypted=await svc.vault.rotate(actor=admin))
