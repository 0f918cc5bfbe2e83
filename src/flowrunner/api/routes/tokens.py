"""``/api/v1/tokens``: the caller's API tokens — created (shown once), listed, revoked."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Path, Response

from flowrunner.api.deps import CurrentAccount, Paging, Svc
from flowrunner.api.schemas.accounts import TokenCreate, TokenCreated, TokenOut, TokenPage
from flowrunner.api.schemas.common import COMMON_ERRORS

router = APIRouter(prefix="/tokens", tags=["tokens"], responses=COMMON_ERRORS)
TokenId = Annotated[str, Path(max_length=64)]


@router.post("", status_code=201, response_model=TokenCreated, summary="Create an API token")
async def create_token(body: TokenCreate, account: CurrentAccount, svc: Svc) -> TokenCreated:
    expires = (
        timedelta(seconds=body.expires_in_seconds) if body.expires_in_seconds is not None else None
    )
    issued = await svc.accounts.create_token(account, body.name, expires_in=expires)
    return TokenCreated.of_issued(issued)


@router.get("", response_model=TokenPage, summary="The caller's tokens (never the secrets)")
async def list_tokens(account: CurrentAccount, svc: Svc, paging: Paging) -> TokenPage:
    page = await svc.accounts.list_tokens(account, cursor=paging.cursor, limit=paging.limit)
    return TokenPage(items=[TokenOut.of(t) for t in page.items], next_cursor=page.next_cursor)


@router.get("/{token_id}", response_model=TokenOut)
async def get_token(token_id: TokenId, account: CurrentAccount, svc: Svc) -> TokenOut:
    return TokenOut.of(await svc.accounts.get_token(account, token_id))


@router.delete("/{token_id}", status_code=204, summary="Revoke a token")
async def revoke_token(token_id: TokenId, account: CurrentAccount, svc: Svc) -> Response:
    await svc.accounts.revoke_token(account, token_id)
    svc.tokens.clear()
    return Response(status_code=204)
