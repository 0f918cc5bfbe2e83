"""``POST /api/v1/login``: username and password in, a short-lived Bearer token out."""

from __future__ import annotations

from fastapi import APIRouter, Request

from flowrunner.api.deps import Svc, client_address
from flowrunner.api.schemas.accounts import LoginRequest, LoginResponse
from flowrunner.api.schemas.common import error_responses

router = APIRouter(tags=["auth"], responses=error_responses(400, 401, 413, 422, 429, 500))


@router.post("/login", response_model=LoginResponse, summary="Exchange a password for a token")
async def login(body: LoginRequest, request: Request, svc: Svc) -> LoginResponse:
    issued = await svc.accounts.login(body.username, body.password, client=client_address(request))
    return LoginResponse.of(issued)
