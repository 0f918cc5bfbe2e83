"""The one ASGI layer every HTTP request goes through before the app, doing in this order:

1. **Request id**: ``request.state.request_id`` is the client's ``X-Request-ID`` (when short
   and printable) or a new one; every response carries it, and any exception that escapes
   the app becomes the 500 envelope quoting it (and is logged under it).
2. **Body limit**: 413 for a body over the limit of its path, at once when
   ``Content-Length`` says so, else as soon as the streamed bytes pass it (never buffering
   more than the limit) — including bodies routes read themselves.
3. **Input guard** (``input_guard``): 400 for a NUL in the URL, or a JSON body too deep or
   holding text no store can keep; such a body is read in full here (bounded by the limit)
   and handed on unchanged.
4. **Correlation**: the request id is bound to the log context for everything the request
   does, including the runs it starts (their tasks inherit the context).

One plain-ASGI class rather than four: each layer was a coroutine frame, a closure and its
own parse of the headers on every request of the hot path (``POST .../run``, the public hook
route); here the headers are read once, in one pass. Plain ASGI (not
``BaseHTTPMiddleware``): no task per request, and the body is seen as it streams in.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Sequence

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from structlog.contextvars import bind_contextvars, reset_contextvars

from flowrunner.api.errors import PayloadTooLarge, envelope, internal_error
from flowrunner.api.input_guard import InputRejected, check_raw, check_url, is_json

log = logging.getLogger("flowrunner.api")

# A client-supplied id is echoed into headers and logs: keep it short and printable.
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:@/+=-]{1,128}$")
_JSON_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class RequestMiddleware:
    """Request id, body limit, input guard and log correlation (see the module docstring).
    ``by_prefix`` gives paths their own body limit (longest prefix wins), ``default`` the rest.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        default: int,
        by_prefix: Sequence[tuple[str, int]] = (),
        max_json_depth: int,
    ) -> None:
        self.app = app
        self.default = default
        # Longest prefix first, so /api/v1/flows/validate can differ from /api/v1/flows.
        self.by_prefix = sorted(by_prefix, key=lambda p: len(p[0]), reverse=True)
        self.max_json_depth = max_json_depth

    def limit_for(self, path: str) -> int:
        for prefix, limit in self.by_prefix:
            if path.startswith(prefix):
                return limit
        return self.default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given, declared, content_type = _headers(scope)
        rid = given if given is not None and _REQUEST_ID.match(given) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = rid
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                MutableHeaders(scope=message)["X-Request-ID"] = rid
            await send(message)

        tokens = bind_contextvars(request_id=rid)
        try:
            await self._guarded(scope, receive, send_with_id, declared, content_type)
        except PayloadTooLarge as exc:  # at once, or while something read the body
            if started:
                raise
            response = envelope(413, exc.code, exc.message, rid, details=exc.details)
            await response(scope, receive, send)
        except Exception:
            log.exception("unhandled error [%s]", rid)
            if started:
                raise
            await internal_error(rid)(scope, receive, send)
        finally:
            reset_contextvars(**tokens)

    async def _guarded(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        declared: str | None,
        content_type: str | None,
    ) -> None:
        limit = self.limit_for(scope["path"])
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

        try:
            check_url(scope)
            if scope["method"] not in _JSON_BODY_METHODS or not is_json(content_type):
                await self.app(scope, limited_receive, send)
                return
            body, more = await _read_body(limited_receive)
            check_raw(body, max_depth=self.max_json_depth, loc=("body",))
        except InputRejected as exc:
            rid = scope["state"]["request_id"]
            await envelope(400, exc.code, exc.message, rid, details=exc.details)(
                scope, receive, send
            )
            return
        await self.app(scope, _replay(body, more, limited_receive), send)


def _headers(scope: Scope) -> tuple[str | None, str | None, str | None]:
    """``X-Request-ID``, ``Content-Length`` and ``Content-Type`` (the first of each), in one
    pass over the raw headers (ASGI servers give the names in lower case)."""
    rid = length = kind = None
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            if rid is None:
                rid = value.decode("latin-1")
        elif name == b"content-length":
            if length is None:
                length = value.decode("latin-1")
        elif name == b"content-type" and kind is None:
            kind = value.decode("latin-1")
    return rid, length, kind


async def _read_body(receive: Receive) -> tuple[bytes, list[Message]]:
    """The whole body, and any non-body message received after it (a disconnect)."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks), [message]
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks), []


def _replay(body: bytes, after: list[Message], receive: Receive) -> Receive:
    pending: list[Message] = [{"type": "http.request", "body": body, "more_body": False}, *after]

    async def replayed() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replayed
