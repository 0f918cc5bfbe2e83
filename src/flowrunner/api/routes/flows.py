"""``/api/v1/flows``: the registry over HTTP — CRUD, search, versions, diff, restore, validate.

``GET`` answers with an ``ETag`` of the current version; ``PUT`` and restore honour
``If-Match`` with it (412 when the flow moved on), so two editors cannot overwrite each other.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import PlainTextResponse

from flowrunner.api.bodies import read_yaml_or_json, yaml_or_json_body
from flowrunner.api.deps import CurrentAccount, Paging, Svc
from flowrunner.api.errors import ApiError
from flowrunner.api.etags import IfMatch, etag, if_match_version
from flowrunner.api.schemas.common import COMMON_ERRORS, QueryDateTime, error_responses
from flowrunner.api.schemas.flows import (
    DiffOut,
    FlowCreate,
    FlowDetail,
    FlowOut,
    FlowPage,
    FlowPatch,
    FlowUpdate,
    FlowValidate,
    ProblemOut,
    ValidationReport,
    VersionDetail,
    VersionOut,
    VersionPage,
)
from flowrunner.errors import Conflict
from flowrunner.flows import FlowFilters, SavedFlow
from flowrunner.flows.registry import MAX_VERSION_MESSAGE

router = APIRouter(prefix="/flows", tags=["flows"], responses=COMMON_ERRORS)

YAML = "application/yaml"
Message = Annotated[
    str | None,
    Query(
        max_length=MAX_VERSION_MESSAGE,
        description="a note stored with the new version (a JSON body's `message` wins)",
    ),
]
# Bounded so no generated value overflows a database integer column.
MAX_VERSION = 2_147_483_647
FlowId = Annotated[str, Path(max_length=64)]
VersionNumber = Annotated[int, Path(ge=1, le=MAX_VERSION)]
YAML_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {YAML: {"schema": {"type": "string"}}}}
}


def _wants_yaml(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return any(t in accept for t in ("application/yaml", "application/x-yaml", "text/yaml"))


async def _guarded(expected: int | None, save: Awaitable[SavedFlow]) -> SavedFlow:
    """Await ``save``; a version conflict asked for with If-Match is a 412, not a 409."""
    try:
        saved = await save
    except Conflict as exc:
        if expected is None:
            raise
        raise ApiError(412, f"the flow is no longer at version {expected}") from exc
    return saved


def _detail(saved: SavedFlow, response: Response) -> FlowDetail:
    response.headers["ETag"] = etag(saved.flow.current_version)
    return FlowDetail.of_saved(saved)


@router.post(
    "",
    status_code=201,
    response_model=FlowDetail,
    openapi_extra=yaml_or_json_body(FlowCreate),
    summary="Create a flow from YAML (version 1)",
)
async def create_flow(
    request: Request,
    response: Response,
    account: CurrentAccount,
    svc: Svc,
    message: Message = None,
) -> FlowDetail:
    body = await read_yaml_or_json(request, FlowCreate)
    saved = await svc.flows.create(
        account.id,
        body.content,
        name=body.name,
        description=body.description,
        tags=body.tags or (),
        actor_id=account.id,
        message=body.message or message,
    )
    response.headers["Location"] = f"{request.url.path}/{saved.flow.id}"
    return _detail(saved, response)


@router.post(
    "/validate",
    response_model=ValidationReport,
    openapi_extra=yaml_or_json_body(FlowValidate),
    summary="Validate YAML without saving it",
)
async def validate_flow(request: Request, account: CurrentAccount, svc: Svc) -> ValidationReport:
    body = await read_yaml_or_json(request, FlowValidate)
    problems = await svc.flows.validate(body.content, account.id)
    return ValidationReport(
        valid=not any(p.severity == "error" for p in problems),
        problems=[ProblemOut.of(p) for p in problems],
    )


@router.get("", response_model=FlowPage, summary="List and search flows")
async def list_flows(
    account: CurrentAccount,
    svc: Svc,
    paging: Paging,
    name: Annotated[str | None, Query(max_length=200, description="name contains")] = None,
    description: Annotated[str | None, Query(max_length=200)] = None,
    tag: Annotated[list[str] | None, Query(description="has every tag given")] = None,
    created_after: QueryDateTime | None = None,
    created_before: QueryDateTime | None = None,
    updated_after: QueryDateTime | None = None,
    updated_before: QueryDateTime | None = None,
) -> FlowPage:
    filters = FlowFilters(
        name_contains=name,
        description_contains=description,
        tags=tag or (),
        created_after=created_after,
        created_before=created_before,
        updated_after=updated_after,
        updated_before=updated_before,
    )
    page = await svc.flows.list(
        account.id, filters=filters, limit=paging.limit, cursor=paging.cursor
    )
    return FlowPage(items=[FlowOut.of(f) for f in page.items], next_cursor=page.next_cursor)


@router.get(
    "/{flow_id}",
    response_model=FlowDetail,
    responses=YAML_RESPONSE,
    summary="A flow with its current YAML (Accept: application/yaml for the raw text)",
)
async def get_flow(
    flow_id: FlowId, request: Request, response: Response, account: CurrentAccount, svc: Svc
) -> FlowDetail | PlainTextResponse:
    saved = await svc.flows.get(account.id, flow_id)
    if _wants_yaml(request):
        headers = {"ETag": etag(saved.flow.current_version)}
        return PlainTextResponse(saved.version.yaml, media_type=YAML, headers=headers)
    return _detail(saved, response)


@router.put(
    "/{flow_id}",
    response_model=FlowDetail,
    openapi_extra=yaml_or_json_body(FlowUpdate),
    responses=error_responses(409, 412),
    summary="Store new YAML as the next version",
)
async def update_flow(
    flow_id: FlowId,
    request: Request,
    response: Response,
    account: CurrentAccount,
    svc: Svc,
    if_match: IfMatch = None,
    message: Message = None,
) -> FlowDetail:
    body = await read_yaml_or_json(request, FlowUpdate)  # a bad body is a 422 before any 412
    expected = if_match_version(if_match, "flow")
    saved = await _guarded(
        expected,
        svc.flows.update(
            account.id,
            flow_id,
            body.content,
            expected_version=expected,
            name=body.name,
            description=body.description,
            actor_id=account.id,
            message=body.message or message,
        ),
    )
    return _detail(saved, response)


@router.patch("/{flow_id}", response_model=FlowOut, summary="Change name, description or tags")
async def patch_flow(
    flow_id: FlowId, body: FlowPatch, account: CurrentAccount, svc: Svc
) -> FlowOut:
    flow = await svc.flows.patch(
        account.id,
        flow_id,
        name=body.name,
        description=body.description,
        tags=body.tags,
        actor_id=account.id,
    )
    return FlowOut.of(flow)


@router.delete("/{flow_id}", status_code=204, summary="Delete (past runs stay readable)")
async def delete_flow(flow_id: FlowId, account: CurrentAccount, svc: Svc) -> Response:
    await svc.flows.delete(account.id, flow_id, actor_id=account.id)
    return Response(status_code=204)


@router.get("/{flow_id}/versions", response_model=VersionPage, summary="Versions, newest first")
async def list_versions(
    flow_id: FlowId, account: CurrentAccount, svc: Svc, paging: Paging
) -> VersionPage:
    page = await svc.flows.versions(account.id, flow_id, limit=paging.limit, cursor=paging.cursor)
    return VersionPage(items=[VersionOut.of(v) for v in page.items], next_cursor=page.next_cursor)


@router.get(
    "/{flow_id}/versions/{number}",
    response_model=VersionDetail,
    responses=YAML_RESPONSE,
    summary="One version with its YAML",
)
async def get_version(
    flow_id: FlowId, number: VersionNumber, request: Request, account: CurrentAccount, svc: Svc
) -> VersionDetail | PlainTextResponse:
    version = await svc.flows.version(account.id, flow_id, number)
    if _wants_yaml(request):
        return PlainTextResponse(version.yaml, media_type=YAML)
    return VersionDetail.of_version(version)


@router.get("/{flow_id}/diff", response_model=DiffOut, summary="Unified diff of two versions")
async def diff_versions(
    flow_id: FlowId,
    account: CurrentAccount,
    svc: Svc,
    from_version: Annotated[int, Query(alias="from", ge=1, le=MAX_VERSION)],
    to_version: Annotated[int, Query(alias="to", ge=1, le=MAX_VERSION)],
) -> DiffOut:
    text = await svc.flows.diff(account.id, flow_id, from_version, to_version)
    return DiffOut(from_version=from_version, to_version=to_version, diff=text)


@router.post(
    "/{flow_id}/versions/{number}/restore",
    response_model=FlowDetail,
    responses=error_responses(409, 412),
    summary="Make an old version current again (as a new version)",
)
async def restore_version(
    flow_id: FlowId,
    number: VersionNumber,
    response: Response,
    account: CurrentAccount,
    svc: Svc,
    if_match: IfMatch = None,
    message: Message = None,
) -> FlowDetail:
    expected = if_match_version(if_match, "flow")
    saved = await _guarded(
        expected,
        svc.flows.restore(
            account.id,
            flow_id,
            number,
            expected_version=expected,
            actor_id=account.id,
            message=message,
        ),
    )
    return _detail(saved, response)
