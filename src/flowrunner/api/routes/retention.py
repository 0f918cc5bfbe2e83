"""``/api/v1/accounts/{account_id}/retention``: how long an account's finished runs are kept.

An account reads and sets its own policy (its runs are its data); an admin those of any
account. Without an own policy the server's default applies (``FLOWRUNNER_RETENTION_*``).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Request, Response

from flowrunner.api.deps import CurrentAccount, Svc
from flowrunner.api.schemas.common import COMMON_ERRORS, error_responses
from flowrunner.audit import actions
from flowrunner.errors import NotFound
from flowrunner.retention import PolicyStore, RetentionPolicy

router = APIRouter(prefix="/accounts", tags=["accounts"], responses=COMMON_ERRORS)
AccountId = Annotated[str, Path(max_length=64, description="an account id, or `me`")]
EXAMPLE = {"completed": {"days": 30, "keep_last": None}, "failed": {"days": 90, "keep_last": 1000}}


def _policies(request: Request) -> PolicyStore:
    found: PolicyStore | None = getattr(request.app.state, "retention", None)
    if found is None:
        raise NotFound("retention is turned off (FLOWRUNNER_RETENTION_ENABLED=false)")
    return found


async def _target(svc: Svc, account: CurrentAccount, account_id: str) -> str:
    # get_account answers 404 for another account's id unless the caller is an admin.
    return (await svc.accounts.get_account(account, account_id)).id


def _shape(own: RetentionPolicy | None, default: RetentionPolicy) -> dict[str, Any]:
    return {
        "effective": (own or default).to_json(),
        "own": None if own is None else own.to_json(),
        "default": default.to_json(),
    }


@router.get("/{account_id}/retention", summary="The account's retention policy")
async def get_retention(
    account_id: AccountId, account: CurrentAccount, svc: Svc, request: Request
) -> dict[str, Any]:
    policies = _policies(request)
    target = await _target(svc, account, account_id)
    return _shape(await policies.own(target), policies.default)


@router.put(
    "/{account_id}/retention",
    summary="Set the account's own retention policy",
    responses=error_responses(400),
)
async def put_retention(
    account_id: AccountId,
    account: CurrentAccount,
    svc: Svc,
    request: Request,
    body: Annotated[dict[str, Any], Body(examples=[EXAMPLE])],
) -> dict[str, Any]:
    policies = _policies(request)
    target = await _target(svc, account, account_id)
    policy = RetentionPolicy.from_json(body)
    await policies.set(target, policy)
    await svc.audit.record(
        actions.RETENTION_SET, account_id=target, actor_id=account.id, target=target,
        details=policy.to_json(),
    )  # fmt: skip
    return _shape(policy, policies.default)


@router.delete(
    "/{account_id}/retention", status_code=204, summary="Back to the server's default policy"
)
async def delete_retention(
    account_id: AccountId, account: CurrentAccount, svc: Svc, request: Request
) -> Response:
    policies = _policies(request)
    target = await _target(svc, account, account_id)
    if await policies.clear(target):
        await svc.audit.record(
            actions.RETENTION_CLEARED, account_id=target, actor_id=account.id, target=target
        )
    return Response(status_code=204)
