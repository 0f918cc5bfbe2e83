"""Runs over HTTP: start a flow, list and read runs, their logs, cancel, retry, and follow
one run's events as Server-Sent Events.

``POST /flows/{id}/run`` answers ``202 {"execution_id", "status"}`` at once, or with
``?wait=30s`` the finished run (200) when it ends within that time. An ``Idempotency-Key``
header makes the request safe to retry: the same key returns the run it started.
``GET /executions/{id}?wait=30s`` answers once the run has ended, or as it is after that time.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Header, Path, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from flowrunner.api.deps import CurrentAccount, Paging
from flowrunner.api.schemas.common import COMMON_ERRORS, QueryDateTime, error_responses
from flowrunner.api.schemas.executions import (
    EventOut,
    ExecutionOut,
    ExecutionPage,
    LogPage,
    RetryRequest,
    RunAccepted,
    RunRequest,
)
from flowrunner.definition import parse_duration
from flowrunner.errors import InvalidInput
from flowrunner.executions import ExecutionService, is_terminal
from flowrunner.executions.events import STREAM, as_message
from flowrunner.storage.records import ExecutionStatus

router = APIRouter(tags=["executions"], responses=COMMON_ERRORS)

MAX_WAIT_SECONDS = 300.0
Id = Annotated[str, Path(max_length=64)]


async def executions(request: Request) -> ExecutionService:
    found: ExecutionService = request.app.state.executions
    return found


Runs = Annotated[ExecutionService, Depends(executions)]


def _wait_seconds(wait: str | None) -> float:
    if wait is None:
        return 0.0
    try:
        seconds = parse_duration(wait)
    except ValueError as exc:
        raise InvalidInput(f"wait: {exc}", field="wait") from exc
    return min(seconds, MAX_WAIT_SECONDS)


@router.post(
    "/flows/{flow_id}/run",
    status_code=202,
    response_model=RunAccepted,
    responses={200: {"model": ExecutionOut}, **error_responses(409)},
    summary="Start a run of a flow (its current version unless `version`)",
)
async def run_flow(
    flow_id: Id,
    account: CurrentAccount,
    request: Request,
    body: Annotated[RunRequest | None, Body()] = None,
    wait: Annotated[
        str | None, Query(max_length=16, description="e.g. 30s: answer when the run ends")
    ] = None,
    idempotency_key: Annotated[str | None, Header(max_length=255)] = None,
) -> Response:
    # The service off the app, not ``Runs``: one dependency fewer to solve on the hot route.
    runs: ExecutionService = request.app.state.executions
    body = body or RunRequest()
    run_input = body.input if body.input is not None else body.shared
    if run_input is None and "input" not in body.model_fields_set:
        run_input = {}
    seconds = _wait_seconds(wait)
    started = await runs.start(
        account.id,
        flow_id,
        run_input,
        version=body.version,
        idempotency_key=idempotency_key,
    )
    execution = started.execution
    headers = {"Location": f"/api/v1/executions/{execution.id}"}
    if not started.created:
        headers["Idempotent-Replayed"] = "true"
    if seconds > 0:
        execution = await runs.wait(account.id, execution.id, within=seconds)
        if is_terminal(execution.status):
            return _json(ExecutionOut.of(execution), 200, headers)
    accepted = RunAccepted(execution_id=execution.id, status=execution.status)
    return _json(accepted, 202, headers)


def _json(model: BaseModel, status: int, headers: dict[str, str]) -> Response:
    # pydantic writes the JSON itself (in Rust): no dict of the model and no second encoder.
    return Response(model.model_dump_json(), status, headers, media_type="application/json")


@router.get("/executions", response_model=ExecutionPage, summary="List runs")
async def list_executions(
    account: CurrentAccount,
    runs: Runs,
    paging: Paging,
    flow_id: Annotated[str | None, Query(max_length=64)] = None,
    status: Annotated[list[ExecutionStatus] | None, Query()] = None,
    created_after: QueryDateTime | None = None,
    created_before: QueryDateTime | None = None,
    parent_id: Annotated[
        str | None, Query(max_length=64, description="only the child runs of this run")
    ] = None,
) -> ExecutionPage:
    page = await runs.list(
        account.id,
        flow_id=flow_id,
        parent_id=parent_id,
        status=status or (),
        created_after=created_after,
        created_before=created_before,
        limit=paging.limit,
        cursor=paging.cursor,
    )
    return ExecutionPage.of(page.items, page.next_cursor)


@router.get("/executions/{execution_id}", response_model=ExecutionOut, summary="One run")
async def get_execution(
    execution_id: Id,
    account: CurrentAccount,
    runs: Runs,
    wait: Annotated[
        str | None,
        Query(max_length=16, description="e.g. 30s: answer once the run has ended (or then)"),
    ] = None,
) -> ExecutionOut:
    seconds = _wait_seconds(wait)
    # Read first: another account's run is a 404 at once (never waited for), an ended one
    # is answered without waiting.
    execution = await runs.get(account.id, execution_id)
    if seconds > 0 and not is_terminal(execution.status):
        execution = await runs.wait(account.id, execution_id, within=seconds)
    return ExecutionOut.of(execution)


@router.get(
    "/executions/{execution_id}/usage",
    summary="A run's model-call token usage (llm nodes): totals and per node",
)
async def execution_usage(execution_id: Id, account: CurrentAccount, runs: Runs) -> dict[str, Any]:
    return await runs.usage(account.id, execution_id)


@router.get(
    "/executions/{execution_id}/children",
    response_model=ExecutionPage,
    summary="The child runs a run's flow nodes started (stored sub-flows), newest first",
)
async def execution_children(
    execution_id: Id, account: CurrentAccount, runs: Runs, paging: Paging
) -> ExecutionPage:
    await runs.get(account.id, execution_id)  # 404 for a missing (or another account's) run
    page = await runs.list(
        account.id, parent_id=execution_id, limit=paging.limit, cursor=paging.cursor
    )
    return ExecutionPage.of(page.items, page.next_cursor)


@router.get("/executions/{execution_id}/logs", response_model=LogPage, summary="A run's log lines")
async def execution_logs(
    execution_id: Id,
    account: CurrentAccount,
    runs: Runs,
    node_id: Annotated[str | None, Query(max_length=128)] = None,
    level: Annotated[str | None, Query(max_length=16)] = None,
    since: QueryDateTime | None = None,
    until: QueryDateTime | None = None,
    after_seq: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> LogPage:
    await runs.get(account.id, execution_id)  # 404 before any filtering
    events, cursor = await runs.logs(
        account.id,
        execution_id,
        node_id=node_id,
        level=level,
        since=since,
        until=until,
        after_seq=after_seq,
        limit=limit,
    )
    return LogPage(
        items=[EventOut(**as_message(e)) for e in events],
        next_cursor=str(cursor) if cursor is not None else None,
    )


@router.post(
    "/executions/{execution_id}/cancel",
    response_model=ExecutionOut,
    responses=error_responses(409),
    summary="Stop a run (its running node is interrupted)",
)
async def cancel_execution(execution_id: Id, account: CurrentAccount, runs: Runs) -> ExecutionOut:
    return ExecutionOut.of(await runs.cancel(account.id, execution_id))


@router.post(
    "/executions/{execution_id}/signals/{name}",
    status_code=202,
    response_model=RunAccepted,
    responses=error_responses(409, 422),
    summary="Send a signal to a run waiting for it (a wait_for node); the body is its payload",
)
async def signal_execution(
    execution_id: Id,
    name: Annotated[str, Path(max_length=64)],
    account: CurrentAccount,
    runs: Runs,
    payload: Annotated[Any, Body()] = None,
) -> RunAccepted:
    """409 when the run is not waiting for this signal now (signals are not buffered: send
    it again once the run waits), 422 when the payload fails the wait's schema (the run keeps
    waiting)."""
    run = await runs.signal(account.id, execution_id, name, payload)
    return RunAccepted(execution_id=run.id, status=run.status)


@router.post(
    "/executions/{execution_id}/retry",
    status_code=202,
    response_model=RunAccepted,
    responses=error_responses(409),
    summary="Run again with the same version and input, or resume from the failed node",
)
async def retry_execution(
    execution_id: Id,
    account: CurrentAccount,
    runs: Runs,
    body: Annotated[RetryRequest | None, Body()] = None,
    resume: Annotated[bool, Query()] = False,
) -> RunAccepted:
    again = await runs.retry(account.id, execution_id, resume=resume or bool(body and body.resume))
    return RunAccepted(execution_id=again.execution.id, status=again.execution.status)


@router.get(
    "/executions/{execution_id}/events",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
    summary="Follow a run as Server-Sent Events (Last-Event-ID resumes)",
)
async def execution_events(
    execution_id: Id,
    account: CurrentAccount,
    runs: Runs,
    last_event_id: Annotated[str | None, Header(max_length=20)] = None,
    after_seq: Annotated[int | None, Query(ge=0)] = None,
) -> StreamingResponse:
    start = after_seq or 0
    if last_event_id is not None:
        if not last_event_id.strip().isdigit():
            raise InvalidInput("Last-Event-ID must be an event sequence number")
        start = int(last_event_id)
    stream = await runs.follow(account.id, execution_id, after_seq=start)
    return StreamingResponse(
        _sse(stream),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _sse(stream: AsyncIterator[Any]) -> AsyncIterator[str]:
    async for event in stream:
        data = json.dumps(as_message(event), separators=(",", ":"))
        if event.type == STREAM:  # live only: not a position to resume from
            yield f"event: {event.type}\ndata: {data}\n\n"
            continue
        yield f"id: {event.seq}\nevent: {event.type}\ndata: {data}\n\n"
