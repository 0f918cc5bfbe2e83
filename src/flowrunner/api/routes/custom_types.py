"""``/api/v1/node-types/custom``: the caller's own JavaScript node types, with versions.

A definition is posted as YAML (``application/yaml``) or JSON: ``name``, ``description``,
``params`` (JSON Schema), ``script``, optional ``actions``. Every account sees only its own;
another account's name is a 404 like a missing one. A version's message is the ``message``
query parameter. Saves and deletes are audited.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response

from flowrunner.api.bodies import YAML_TYPES, media_type
from flowrunner.api.deps import CurrentAccount, Paging, Svc
from flowrunner.api.errors import ApiError
from flowrunner.api.etags import IfMatch, etag, if_match_version
from flowrunner.api.schemas.common import COMMON_ERRORS, error_responses
from flowrunner.api.schemas.custom_types import (
    CustomTypeList,
    CustomTypeOut,
    CustomTypeVersionPage,
)
from flowrunner.custom_types.service import MAX_MESSAGE
from flowrunner.definition.source import SourceError, parse_yaml
from flowrunner.errors import Conflict, InvalidInput

router = APIRouter(prefix="/node-types/custom", tags=["node types"], responses=COMMON_ERRORS)

TypeName = Annotated[str, Path(max_length=100)]
Number = Annotated[int, Path(ge=1, le=2_147_483_647)]
Message = Annotated[
    str | None,
    Query(max_length=MAX_MESSAGE, description="a note stored with the new version"),
]
DEFINITION_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/yaml": {"schema": {"type": "string"}},
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["name", "script"],
                    "properties": {
                        "name": {"type": "string"},
                        "description": {"type": "string"},
                        "params": {"type": "object"},
                        "script": {"type": "string"},
                        "actions": {"type": "array", "items": {"type": "string"}},
                    },
                }
            },
        },
    }
}


async def _definition(request: Request) -> Any:
    """The body as data: YAML (read with the flow loader's bounds) or JSON."""
    kind = media_type(request)
    raw = await request.body()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ApiError(400, "the body is not valid UTF-8") from exc
    if kind in YAML_TYPES:
        try:
            return parse_yaml(text).data
        except SourceError as exc:
            raise InvalidInput(f"YAML: {exc.problem.message}") from exc
    if kind == "application/json" or kind.endswith("+json"):
        try:
            return json.loads(text)
        except ValueError as exc:
            raise InvalidInput(f"JSON: {exc}") from exc
    raise ApiError(415, "send the definition as application/yaml or application/json")


@router.get("", response_model=CustomTypeList, summary="The account's node types")
async def list_types(account: CurrentAccount, svc: Svc) -> CustomTypeList:
    mine = await svc.node_types.list(account.id)
    return CustomTypeList(items=[CustomTypeOut.of(t) for t in mine])


@router.post(
    "",
    status_code=201,
    response_model=CustomTypeOut,
    openapi_extra=DEFINITION_BODY,
    responses=error_responses(409),
    summary="Define a node type (version 1)",
)
async def create_type(
    request: Request,
    response: Response,
    account: CurrentAccount,
    svc: Svc,
    message: Message = None,
) -> CustomTypeOut:
    spec = svc.node_types.parse(await _definition(request))
    saved = await svc.node_types.create(account.id, spec, actor_id=account.id, message=message)
    response.headers["Location"] = f"{request.url.path}/{saved.name}"
    response.headers["ETag"] = etag(saved.version)
    return CustomTypeOut.of(saved)


@router.get("/{name}", response_model=CustomTypeOut, summary="A node type's current version")
async def get_type(
    name: TypeName, response: Response, account: CurrentAccount, svc: Svc
) -> CustomTypeOut:
    saved = await svc.node_types.get(account.id, name)
    response.headers["ETag"] = etag(saved.version)
    return CustomTypeOut.of(saved)


@router.put(
    "/{name}",
    response_model=CustomTypeOut,
    openapi_extra=DEFINITION_BODY,
    responses=error_responses(409, 412),
    summary="Store a new version (If-Match honoured: 412 when it moved on)",
)
async def update_type(
    name: TypeName,
    request: Request,
    response: Response,
    account: CurrentAccount,
    svc: Svc,
    message: Message = None,
    if_match: IfMatch = None,
) -> CustomTypeOut:
    data = await _definition(request)
    if isinstance(data, dict) and "name" not in data:
        data = {**data, "name": name}  # the path names it
    spec = svc.node_types.parse(data)
    expected = if_match_version(if_match, "type")
    try:
        saved = await svc.node_types.update(
            account.id,
            name,
            spec,
            expected_version=expected,
            actor_id=account.id,
            message=message,
        )
    except Conflict as exc:
        if expected is None or "current_version" not in exc.context:
            raise
        # As for flows: a version the client read that is no longer current is a 412.
        raise ApiError(412, exc.message) from exc
    response.headers["ETag"] = etag(saved.version)
    return CustomTypeOut.of(saved)


@router.delete("/{name}", status_code=204, summary="Delete (its versions are kept)")
async def delete_type(name: TypeName, account: CurrentAccount, svc: Svc) -> Response:
    await svc.node_types.delete(account.id, name, actor_id=account.id)
    return Response(status_code=204)


@router.get(
    "/{name}/versions", response_model=CustomTypeVersionPage, summary="Versions, newest first"
)
async def list_versions(
    name: TypeName, account: CurrentAccount, svc: Svc, paging: Paging
) -> CustomTypeVersionPage:
    page = await svc.node_types.versions(account.id, name, limit=paging.limit, cursor=paging.cursor)
    return CustomTypeVersionPage(
        items=[CustomTypeOut.of(t) for t in page.items], next_cursor=page.next_cursor
    )


@router.get("/{name}/versions/{number}", response_model=CustomTypeOut, summary="One version")
async def get_version(
    name: TypeName, number: Number, account: CurrentAccount, svc: Svc
) -> CustomTypeOut:
    return CustomTypeOut.of(await svc.node_types.version(account.id, name, number))
