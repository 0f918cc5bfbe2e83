"""``/api/v1/hooks/{trigger_id}``: the public URL of a webhook trigger.

No account token: the trigger's own verification decides (``flowrunner.triggers``). Every
refusal is an error envelope with the status the check chose; the body is read raw, as the
signature was computed over those bytes.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, Response

from flowrunner.api.deps import client_address
from flowrunner.api.errors import correlation_id, envelope
from flowrunner.api.schemas.common import error_responses
from flowrunner.triggers import HookRefused, HookRequest, InboundHooks
from flowrunner.triggers.requests import query_of

router = APIRouter(tags=["hooks"])


async def hook(trigger_id: Annotated[str, Path(max_length=64)], request: Request) -> Response:
    """Start the trigger's flow: async → 202 with the execution id; sync → the run's answer
    (its output, or what a ``respond`` node set)."""
    hooks: InboundHooks = request.app.state.hooks
    incoming = HookRequest(
        method=request.method,
        # The scope's path, not ``request.url`` (which builds and parses a whole URL per
        # request); they differ only for a ``?``, ``#`` or backslash, which no trigger id holds.
        path=request.scope["path"],
        query=query_of(request.query_params.multi_items()),
        # Starlette's header names are lower-case already.
        headers=dict(request.headers.items()),
        raw=await request.body(),
        client=client_address(request),
    )
    try:
        answer = await hooks.handle(trigger_id, incoming)
    except HookRefused as refused:
        return envelope(
            refused.status,
            refused.code,
            refused.message,
            correlation_id(request),
            headers=refused.headers,
        )
    return Response(answer.body, answer.status, answer.headers, media_type=answer.media_type)


# One operation per method (OpenAPI operation ids must be unique); the same handler.
for _method in ("POST", "GET", "PUT"):
    router.add_api_route(
        "/hooks/{trigger_id}",
        hook,
        methods=[_method],
        operation_id=f"hook_{_method.lower()}",
        summary=f"{_method} to a webhook trigger (no token: the trigger's verification decides)",
        status_code=202,
        responses={
            200: {"description": "sync: the run's output, or what a respond node set"},
            **error_responses(400, 401, 404, 405, 413, 415, 429, 500),
        },
    )
