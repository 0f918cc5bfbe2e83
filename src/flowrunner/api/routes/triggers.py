"""``/api/v1/triggers``: an account's webhook triggers and schedules, and enable/disable.

Triggers declared in a flow's YAML appear here with ``source: flow`` (saving the flow
rewrites them); the API may switch them off and on, and create or delete its own.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Response

from flowrunner.api.deps import CurrentAccount, Paging, Svc
from flowrunner.api.schemas.common import COMMON_ERRORS
from flowrunner.api.schemas.triggers import TriggerCreate, TriggerOut, TriggerPage, TriggerPatch
from flowrunner.errors import InvalidInput
from flowrunner.triggers.parsing import parse_trigger

router = APIRouter(tags=["triggers"], responses=COMMON_ERRORS)
TriggerId = Annotated[str, Path(max_length=64)]


@router.get("/triggers", response_model=TriggerPage, summary="List triggers")
async def list_triggers(
    account: CurrentAccount,
    svc: Svc,
    paging: Paging,
    flow_id: Annotated[str | None, Query(max_length=64)] = None,
    kind: Annotated[Literal["webhook", "schedule"] | None, Query()] = None,
) -> TriggerPage:
    page = await svc.triggers.list(
        account.id, flow_id=flow_id, kind=kind, limit=paging.limit, cursor=paging.cursor
    )
    return TriggerPage(items=[TriggerOut.of(t) for t in page.items], next_cursor=page.next_cursor)


@router.post("/triggers", status_code=201, response_model=TriggerOut, summary="Create a trigger")
async def create_trigger(body: TriggerCreate, account: CurrentAccount, svc: Svc) -> TriggerOut:
    entries = {k: v for k, v in (("webhook", body.webhook), ("schedule", body.schedule)) if v}
    if len(entries) != 1:
        raise InvalidInput("give exactly one of webhook or schedule", field="body")
    spec = parse_trigger(entries)
    trigger = await svc.triggers.create(account.id, body.flow_id, spec, actor_id=account.id)
    return TriggerOut.of(trigger)


@router.get("/triggers/{trigger_id}", response_model=TriggerOut, summary="One trigger")
async def get_trigger(trigger_id: TriggerId, account: CurrentAccount, svc: Svc) -> TriggerOut:
    return TriggerOut.of(await svc.triggers.get(account.id, trigger_id))


@router.patch("/triggers/{trigger_id}", response_model=TriggerOut, summary="Enable or disable")
async def patch_trigger(
    trigger_id: TriggerId, body: TriggerPatch, account: CurrentAccount, svc: Svc
) -> TriggerOut:
    trigger = await svc.triggers.set_enabled(
        account.id, trigger_id, body.enabled, actor_id=account.id
    )
    return TriggerOut.of(trigger)


@router.post("/triggers/{trigger_id}/enable", response_model=TriggerOut, summary="Enable")
async def enable_trigger(trigger_id: TriggerId, account: CurrentAccount, svc: Svc) -> TriggerOut:
    return TriggerOut.of(
        await svc.triggers.set_enabled(account.id, trigger_id, True, actor_id=account.id)
    )


@router.post("/triggers/{trigger_id}/disable", response_model=TriggerOut, summary="Disable")
async def disable_trigger(trigger_id: TriggerId, account: CurrentAccount, svc: Svc) -> TriggerOut:
    return TriggerOut.of(
        await svc.triggers.set_enabled(account.id, trigger_id, False, actor_id=account.id)
    )


@router.delete("/triggers/{trigger_id}", status_code=204, summary="Delete a trigger")
async def delete_trigger(trigger_id: TriggerId, account: CurrentAccount, svc: Svc) -> Response:
    await svc.triggers.delete(account.id, trigger_id, actor_id=account.id)
    return Response(status_code=204)
