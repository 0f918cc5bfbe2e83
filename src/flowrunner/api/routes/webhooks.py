"""``/api/v1/webhooks``: the caller's outbound webhook endpoints, their deliveries (each with
every attempt) and manual redelivery. See docs/webhooks.md.

A secret appears once, in the answer that creates or rotates it; header values are masked.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from flowrunner.api.deps import CurrentAccount, Paging
from flowrunner.api.schemas.common import COMMON_ERRORS
from flowrunner.api.schemas.webhooks import (
    DeliveryDetail,
    DeliveryOut,
    DeliveryPage,
    EndpointCreate,
    EndpointOut,
    EndpointPage,
    EndpointUpdate,
    Redelivered,
    RedeliverFailed,
    RotateSecret,
)
from flowrunner.errors import InvalidInput
from flowrunner.webhooks import WebhookService

router = APIRouter(tags=["webhooks"], responses=COMMON_ERRORS)
Id = Annotated[str, Path(max_length=64)]


async def webhooks(request: Request) -> WebhookService:
    found: WebhookService = request.app.state.webhooks
    return found


Hooks = Annotated[WebhookService, Depends(webhooks)]


@router.post("/webhooks", status_code=201, response_model=EndpointOut, summary="Add an endpoint")
async def create_endpoint(
    body: EndpointCreate, caller: CurrentAccount, hooks: Hooks
) -> EndpointOut:
    view = await hooks.create(
        caller, url=body.url, events=body.events, description=body.description,
        secret=body.secret, headers=body.headers, flow_ids=body.flow_ids,
    )  # fmt: skip
    return EndpointOut.of(view)


@router.get("/webhooks", response_model=EndpointPage, summary="The account's endpoints")
async def list_endpoints(caller: CurrentAccount, hooks: Hooks, paging: Paging) -> EndpointPage:
    page = await hooks.list(caller, limit=paging.limit, cursor=paging.cursor)
    return EndpointPage(items=[EndpointOut.of(v) for v in page.items], next_cursor=page.next_cursor)


@router.get("/webhooks/{endpoint_id}", response_model=EndpointOut, summary="One endpoint")
async def get_endpoint(endpoint_id: Id, caller: CurrentAccount, hooks: Hooks) -> EndpointOut:
    return EndpointOut.of(await hooks.get(caller, endpoint_id))


@router.patch("/webhooks/{endpoint_id}", response_model=EndpointOut, summary="Change an endpoint")
async def update_endpoint(
    endpoint_id: Id, body: EndpointUpdate, caller: CurrentAccount, hooks: Hooks
) -> EndpointOut:
    view = await hooks.update(
        caller, endpoint_id, url=body.url, events=body.events, enabled=body.enabled,
        description=body.description, headers=body.headers, flow_ids=body.flow_ids,
    )  # fmt: skip
    return EndpointOut.of(view)


@router.delete("/webhooks/{endpoint_id}", status_code=204, summary="Delete an endpoint")
async def delete_endpoint(endpoint_id: Id, caller: CurrentAccount, hooks: Hooks) -> Response:
    await hooks.delete(caller, endpoint_id)
    return Response(status_code=204)


@router.post(
    "/webhooks/{endpoint_id}/rotate-secret",
    response_model=EndpointOut,
    summary="A new signing secret; the old one also signs during the grace period",
)
async def rotate_secret(
    endpoint_id: Id, caller: CurrentAccount, hooks: Hooks, body: RotateSecret | None = None
) -> EndpointOut:
    secret = body.secret if body is not None else None
    return EndpointOut.of(await hooks.rotate_secret(caller, endpoint_id, secret=secret))


@router.post(
    "/webhooks/{endpoint_id}/test",
    status_code=202,
    response_model=DeliveryOut,
    summary="Send a webhook.test event",
)
async def send_test(endpoint_id: Id, caller: CurrentAccount, hooks: Hooks) -> DeliveryOut:
    return DeliveryOut.of(await hooks.send_test(caller, endpoint_id))


@router.get(
    "/webhooks/{endpoint_id}/deliveries",
    response_model=DeliveryPage,
    summary="The endpoint's deliveries, newest first",
)
async def list_deliveries(
    endpoint_id: Id,
    caller: CurrentAccount,
    hooks: Hooks,
    paging: Paging,
    status: Annotated[Literal["pending", "delivered", "dead"] | None, Query()] = None,
) -> DeliveryPage:
    page = await hooks.deliveries(
        caller, endpoint_id=endpoint_id, status=status, limit=paging.limit, cursor=paging.cursor
    )
    return DeliveryPage(items=[DeliveryOut.of(d) for d in page.items], next_cursor=page.next_cursor)


@router.get(
    "/webhooks/deliveries/{delivery_id}",
    response_model=DeliveryDetail,
    summary="One delivery with its payload and every attempt",
)
async def get_delivery(delivery_id: Id, caller: CurrentAccount, hooks: Hooks) -> DeliveryDetail:
    return DeliveryDetail.of_view(await hooks.delivery(caller, delivery_id))


@router.post(
    "/webhooks/deliveries/{delivery_id}/redeliver",
    status_code=202,
    response_model=DeliveryOut,
    summary="Send a delivery's event again (a new delivery)",
)
async def redeliver(delivery_id: Id, caller: CurrentAccount, hooks: Hooks) -> DeliveryOut:
    return DeliveryOut.of(await hooks.redeliver(caller, delivery_id))


@router.post(
    "/webhooks/{endpoint_id}/redeliver-failed",
    status_code=202,
    response_model=Redelivered,
    summary="Send again every dead-lettered delivery since a time",
)
async def redeliver_failed(
    endpoint_id: Id, body: RedeliverFailed, caller: CurrentAccount, hooks: Hooks
) -> Redelivered:
    if body.since.tzinfo is None:
        raise InvalidInput("since: give a time zone (2026-01-01T00:00:00Z)")
    again = await hooks.redeliver_failed(caller, endpoint_id, since=body.since)
    return Redelivered(count=len(again), items=[DeliveryOut.of(d) for d in again])
