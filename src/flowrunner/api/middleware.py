"""ASGI middleware: the request id every response carries (and every log line of the
request), the last-resort 500, body limits.

Both are plain ASGI (not ``BaseHTTPMiddleware``) so they add no task per request and can see
the body as it streams in.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Sequence

import structlog
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from flowrunner.api.errors import PayloadTooLarge, envelope, internal_error

log = logging.getLogger("flowrunner.api")

# A client-supplied id is echoed into headers and logs: keep it short and printable.
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:@/+=-]{1,128}$")


class RequestContextMiddleware:
    """Sets ``request.state.request_id`` (the client's ``X-Request-ID`` or a new one), adds it
    to every response, and turns any exception that escapes the app into the 500 envelope."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = Headers(scope=scope).get("x-request-id", "")
        rid = given if _REQUEST_ID.match(given) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = rid
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = MutableHeaders(scope=message)
                headers["X-Request-ID"] = rid
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except PayloadTooLarge as exc:  # raised while a middleware-free path read the body
            if started:
                raise
            response = envelope(413, exc.code, exc.message, rid, details=exc.details)
            await response(scope, receive, send)
        except Exception:
            log.exception("unhandled error [%s]", rid)
            if started:
                raise
            await internal_error(rid)(scope, receive, send)


class BodyLimitMiddleware:
    """413 for bodies over the limit of their path: at once when ``Content-Length`` says so,
    else as soon as the streamed bytes pass it (never buffering more than the limit)."""

    def __init__(
        self, app: ASGIApp, *, default: int, by_prefix: Sequence[tuple[str, int]] = ()
    ) -> None:
        self.app = app
        self.default = default
        # Longest prefix first, so /api/v1/flows/validate can differ from /api/v1/flows.
        self.by_prefix = sorted(by_prefix, key=lambda p: len(p[0]), reverse=True)

    def limit_for(self, path: str) -> int:
        for prefix, limit in self.by_prefix:
            if path.startswith(prefix):
                return limit
        return self.default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise PayloadTooLarge(limit)
        seen = 0

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise PayloadTooLarge(limit)
            return message

        await self.app(scope, limited_receive, send)


class CorrelationMiddleware:
    """Binds the request's correlation id (``request.state.request_id``, set by the request
    middleware outside this one) to the log context for everything the request does,
    including runs it starts: their tasks inherit the context."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        rid = scope.get("state", {}).get("request_id") if scope["type"] != "lifespan" else None
        if rid is None:
            await self.app(scope, receive, send)
            return
        with structlog.contextvars.bound_contextvars(request_id=rid):
            await self.app(scope, receive, send)
