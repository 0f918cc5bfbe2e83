"""``/healthz`` (the process answers) and ``/readyz`` (the store answers too).

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


@router.get("/readyz", summary="Storage is reachable", responses={503: {}})
async def readyz(svc: Svc) -> JSONResponse:
    try:
        # Any cheap round trip proves the connection; a missing account is still an answer.
        await svc.store.accounts.get_by_username("readyz-probe")
    except NotFound:
        pass
    except StorageError as exc:
        return JSONResponse({"status": "unavailable", "reason": exc.code}, status_code=503)
    return JSONResponse({"status": "ok"})
