"""``GET /api/v1/audit``: the caller's audit records; admins may read everyone's."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from flowrunner.api.deps import CurrentAccount, Paging, Svc
from flowrunner.api.schemas.common import COMMON_ERRORS, error_responses
from flowrunner.api.schemas.secrets import AuditOut, AuditPage
from flowrunner.errors import Forbidden

router = APIRouter(prefix="/audit", tags=["audit"], responses=COMMON_ERRORS)


@router.get("", response_model=AuditPage, responses=error_responses(403))
async def list_audit(
    account: CurrentAccount,
    svc: Svc,
    paging: Paging,
    scope: Annotated[
        str,
        Query(
            pattern="^(own|all)$",
            description="`own` (newest first) or, for admins, `all`: the whole chain in order",
        ),
    ] = "own",
) -> AuditPage:
    if scope == "all" and not account.is_admin:
        raise Forbidden("only admins read the whole audit log")
    page = await svc.audit.list(
        None if scope == "all" else account.id, cursor=paging.cursor, limit=paging.limit
    )
    return AuditPage(items=[AuditOut.of(r) for r in page.items], next_cursor=page.next_cursor)
