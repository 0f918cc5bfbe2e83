"""``/api/v1/resume/{token}``: a ``wait_for`` node's one-time resume link (no account token).

``POST`` delivers the signal: the payload is the JSON body, or the form fields, over the
query parameters (so ``<link>?decision=approve`` sent with no body delivers
``{"decision": "approve"}``). ``GET`` delivers nothing: it answers a small page with a button
that posts, because mail scanners and link previews fetch the links of an email, and a
single-use link must not be spent by a robot. The token is the only credential: it is
unforgeable and names its run, node and signal (``executions.waits``).
"""

from __future__ import annotations

import html
import json
from typing import Annotated, Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse

from flowrunner.api.routes.executions import Runs
from flowrunner.api.schemas.common import error_responses
from flowrunner.api.schemas.executions import RunAccepted
from flowrunner.errors import InvalidInput

router = APIRouter(tags=["executions"])

Token = Annotated[str, Path(max_length=2048)]


@router.post(
    "/resume/{token}",
    status_code=202,
    response_model=RunAccepted,
    responses=error_responses(400, 404, 409, 410, 422),
    summary="Resume a waiting run through its one-time link (no account token)",
)
async def resume(token: Token, request: Request, runs: Runs) -> RunAccepted:
    """410 once the link's wait is over (used, timed out, or the run moved on), 422 when the
    payload fails the wait's schema (the link stays usable)."""
    payload = await _payload(request)
    run = await runs.resume_link(token, payload)
    return RunAccepted(execution_id=run.id, status=run.status)


@router.get(
    "/resume/{token}",
    response_class=HTMLResponse,
    summary="A page confirming a resume link (a GET never spends it)",
)
async def confirm(token: Token, request: Request) -> HTMLResponse:
    fields = "".join(
        f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
        for k, v in request.query_params.multi_items()
    )
    summary = ", ".join(f"{k}: {v}" for k, v in request.query_params.multi_items())
    page = (
        "<!doctype html><html><head><meta charset='utf-8'><title>Flowrunner</title></head>"
        "<body><main><h1>Continue the run?</h1>"
        f"<p>{html.escape(summary) or 'This link resumes a waiting Flowrunner run.'}</p>"
        f'<form method="post" action="{html.escape(request.url.path)}">{fields}'
        '<button type="submit">Confirm</button></form></main></body></html>'
    )
    return HTMLResponse(page, headers={"Cache-Control": "no-store"})


async def _payload(request: Request) -> Any:
    query: dict[str, Any] = dict(request.query_params.items())
    raw = await request.body()
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body: Any = None
    if kind == "application/x-www-form-urlencoded":
        body = dict(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))
    elif raw.strip():
        try:
            body = json.loads(raw)
        except ValueError as exc:
            raise InvalidInput("the body is not JSON (nor a form)") from exc
    if isinstance(body, dict):
        return {**query, **body}
    if body is None:
        return query or None
    return body
