"""The one mapping from errors to the API's JSON envelope.

Every error response has the shape
``{"error": {"code", "message", "details": [...], "correlation_id"}}`` where the correlation id
is the request's ``X-Request-ID``. Domain errors come from ``flowrunner.errors`` (mapped by
class, most specific first); HTTP-level ones (404 route, 405, 412, 413, 415) are
``HTTPException``s; body validation is pydantic's ``RequestValidationError`` (422). A 500 says
nothing but the correlation id; the exception is logged with it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from flowrunner import errors
from flowrunner.storage import InvalidCursor

log = logging.getLogger("flowrunner.api")

# Most specific first: the first class the error is an instance of decides the status.
STATUS_BY_ERROR: tuple[tuple[type[errors.FlowrunnerError], int], ...] = (
    (errors.FlowTooLarge, 413),
    (errors.InvalidPayload, 422),
    (errors.LinkExpired, 410),
    (errors.DefinitionError, 400),
    (errors.ExpressionError, 400),
    (errors.InvalidInput, 400),
    (errors.DestinationRefused, 400),
    (InvalidCursor, 400),
    (errors.NotFound, 404),
    (errors.Conflict, 409),
    (errors.StorageUnavailable, 503),
    (errors.RateLimited, 429),
    (errors.Unauthenticated, 401),
    (errors.Forbidden, 403),
    (errors.AuthError, 401),
)

HTTP_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    410: "gone",
    412: "precondition_failed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
}


class ApiError(HTTPException):
    """An HTTP-level error raised by the API layer itself, with the envelope's fields."""

    def __init__(
        self,
        status_code: int,
        message: str,
        *,
        code: str | None = None,
        details: Sequence[Any] = (),
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(status_code, message, dict(headers) if headers else None)
        self.code = code or HTTP_CODES.get(status_code, "http_error")
        self.message = message
        self.details = list(details)


class PayloadTooLarge(ApiError):
    def __init__(self, limit: int) -> None:
        super().__init__(
            413,
            f"request body is larger than the limit of {limit} bytes",
            details=[{"limit_bytes": limit}],
        )


def correlation_id(request: Request) -> str:
    rid = getattr(request.state, "request_id", None)
    return rid if isinstance(rid, str) else ""


def envelope(
    status: int,
    code: str,
    message: str,
    correlation: str,
    *,
    details: Sequence[Any] = (),
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body = {
        "error": {
            "code": code,
            "message": message,
            "details": list(details),
            "correlation_id": correlation,
        }
    }
    all_headers = {"X-Request-ID": correlation, **(headers or {})}
    return JSONResponse(body, status_code=status, headers=all_headers)


def internal_error(correlation: str) -> JSONResponse:
    return envelope(
        500,
        "internal_error",
        f"internal error; quote correlation id {correlation} when reporting it",
        correlation,
    )


def _domain_status(exc: errors.FlowrunnerError) -> int:
    for cls, status in STATUS_BY_ERROR:
        if isinstance(exc, cls):
            return status
    return 500


def _domain_details(exc: errors.FlowrunnerError) -> list[Any]:
    if isinstance(exc, errors.FlowTooLarge):  # the same details as the body limit's 413
        return [{"limit_bytes": exc.limit, "size_bytes": exc.size}]
    if isinstance(exc, errors.DefinitionError):
        return [p.as_dict() for p in exc.problems]
    if isinstance(exc, errors.InvalidPayload):
        return exc.problems
    if isinstance(exc, errors.InvalidInput) and isinstance(exc.context.get("details"), list):
        return list(exc.context["details"])  # every problem of the input, by field
    return []


async def _on_domain_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, errors.FlowrunnerError)  # registered for this class only
    status = _domain_status(exc)
    rid = correlation_id(request)
    if status == 500:
        log.error("unmapped error [%s]", rid, exc_info=exc)
        return internal_error(rid)
    headers: dict[str, str] = {}
    if isinstance(exc, errors.RateLimited):
        headers["Retry-After"] = str(max(1, int(exc.retry_after)))
    elif status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="flowrunner", Bearer'
    # Not-found messages never echo ids: "not yours" and "missing" must read the same.
    message = "not found" if status == 404 else exc.message
    return envelope(status, exc.code, message, rid, details=_domain_details(exc), headers=headers)


async def _on_http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    if isinstance(exc, ApiError):
        code, message, details = exc.code, exc.message, exc.details
    else:
        code = HTTP_CODES.get(exc.status_code, "http_error")
        message, details = str(exc.detail), []
    return envelope(
        exc.status_code,
        code,
        message,
        correlation_id(request),
        details=details,
        headers=exc.headers,
    )


async def _on_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    details = [
        {"loc": list(e.get("loc", ())), "message": e.get("msg", ""), "type": e.get("type", "")}
        for e in exc.errors()
    ]
    return envelope(
        422,
        "validation_error",
        "the request is not valid",
        correlation_id(request),
        details=details,
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(errors.FlowrunnerError, _on_domain_error)
    app.add_exception_handler(HTTPException, _on_http_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
