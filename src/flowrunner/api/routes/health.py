"""``/healthz`` (the process answers) and ``/readyz`` (the store answers too)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from flowrunner.api.deps import Svc
from flowrunner.errors import NotFound, StorageError

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is up")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


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
