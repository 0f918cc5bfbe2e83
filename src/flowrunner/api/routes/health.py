"""``/healthz`` (the process answers) and ``/readyz`` (the store answers too, at the schema
this code expects; with the script sandbox's state).

``/health`` and ``/api/v1/health`` answer like ``/healthz``: the original flowrunner's paths,
which load balancers and scripts written for it still probe.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from flowrunner.api.deps import Svc
from flowrunner.errors import NotFound, StorageError
from flowrunner.storage.protocols import Migrations

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is up (and how its event bus is doing)")
@router.get("/health", include_in_schema=False)
@router.get("/api/v1/health", include_in_schema=False)
async def healthz(request: Request) -> dict[str, Any]:
    # The event bus is reported, never judged: without Redis runs go on and followers read the
    # store, so the process stays healthy.
    runs = getattr(request.app.state, "executions", None)
    if runs is None:
        return {"status": "ok"}
    return {"status": "ok", "event_bus": asdict(runs.bus_health())}


@router.get(
    "/readyz",
    summary="Storage is reachable, its schema current; how the script sandbox is doing",
    responses={503: {}},
)
async def readyz(request: Request, svc: Svc) -> JSONResponse:
    """503 only for what keeps the process from serving: a store that does not answer, or a
    schema older than this code's (``migrations: behind``). The sandbox is reported, never
    started: a pool that failed to start fails script nodes, not the API, so the process
    stays ready (``status: degraded``)."""
    body: dict[str, Any] = {"status": "ok"}
    try:
        # Any cheap round trip proves the connection; a missing account is still an answer.
        await svc.store.accounts.get_by_username("readyz-probe")
    except NotFound:
        pass
    except StorageError as exc:
        return JSONResponse({"status": "unavailable", "reason": exc.code}, status_code=503)
    if isinstance(svc.store, Migrations):
        try:
            schema = await svc.store.migration_status()
        except StorageError as exc:
            return JSONResponse({"status": "unavailable", "reason": exc.code}, status_code=503)
        body["migrations"] = asdict(schema)
        if schema.state == "behind":
            body.update(status="unavailable", reason="migrations_pending")
            return JSONResponse(body, status_code=503)
    runs = getattr(request.app.state, "executions", None)
    sandbox = None if runs is None else runs.sandbox_health()
    if sandbox is not None:
        body["sandbox"] = asdict(sandbox)
        if sandbox.status == "failed":
            body["status"] = "degraded"
    return JSONResponse(body)
