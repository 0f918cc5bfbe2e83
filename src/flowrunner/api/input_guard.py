"""The API's one check of what clients send: JSON depth and text every store can hold.

Two kinds of input got past the models and failed later as a 500:

- **Deep JSON.** Parsing 100k nested arrays raises ``RecursionError``; 900 levels parse, are
  stored, and then break every listing that serializes them again. JSON deeper than
  ``FLOWRUNNER_MAX_JSON_DEPTH`` levels is refused before any route sees it.
- **Text a database cannot hold.** PostgreSQL refuses NUL (``\\u0000``) in text and JSON, and
  no UTF-8 column can store a lone UTF-16 surrogate (``\\ud800``): the write, or a later read,
  fails. Such characters are refused in every JSON string and key, in the path and in the
  query string (NUL only: the query string is decoded with replacement, so a surrogate cannot
  come through it).

``InputGuardMiddleware`` applies both to every HTTP request (JSON bodies, including the ones
routes read themselves) and answers ``400 invalid_input`` naming where the bad value is; the
WebSocket route decodes its messages with ``loads_checked``. Most bodies are cleared by a
scan of their bytes (too few brackets to be deep, no escape that could be NUL or a
surrogate), so the full walk runs only on bodies that might fail it.
"""

from __future__ import annotations

import json
import re
from typing import Any

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from flowrunner.api.errors import ApiError, envelope

# What a JSON text must contain to hold a NUL or a surrogate: the escapes, or the raw bytes
# (json.loads decodes bytes with "surrogatepass", so UTF-8-encoded surrogates come through).
_SUSPECT_TEXT = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])|\x00|\xed[\xa0-\xbf]")
_BAD_CHAR = re.compile("[\x00\ud800-\udfff]")
_JSON_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class InputRejected(ApiError):
    """A value no route should receive: 400 ``invalid_input`` with where it is."""

    def __init__(self, message: str, loc: tuple[str | int, ...]) -> None:
        super().__init__(
            400,
            message,
            code="invalid_input",
            details=[{"loc": list(loc), "message": message}],
        )


def check_text(value: str, loc: tuple[str | int, ...]) -> None:
    """Refuse text with a NUL or a lone surrogate (no store can keep it as given)."""
    bad = _BAD_CHAR.search(value)
    if bad is None:
        return
    char = bad.group()
    what = "a NUL character" if char == "\x00" else f"a lone surrogate (U+{ord(char):04X})"
    where = ".".join(str(part) for part in loc)
    raise InputRejected(f"{where}: text must not contain {what}", loc)


def check_json(value: Any, *, max_depth: int, loc: tuple[str | int, ...] = ("body",)) -> None:
    """Walk a decoded JSON value: at most ``max_depth`` levels of arrays and objects, and
    every string and key free of NUL and lone surrogates. Iterative: depth cannot hurt it."""
    stack: list[tuple[Any, int, tuple[str | int, ...]]] = [(value, 0, loc)]
    while stack:
        item, depth, where = stack.pop()
        if isinstance(item, str):
            check_text(item, where)
        elif isinstance(item, dict | list):
            if depth >= max_depth:
                raise _too_deep(max_depth, where)
            if isinstance(item, dict):
                for key, child in item.items():
                    key_loc = (*where, _shown(key))
                    check_text(key, key_loc)
                    stack.append((child, depth + 1, key_loc))
            else:
                stack.extend((child, depth + 1, (*where, i)) for i, child in enumerate(item))


def _shown(key: str) -> str:
    """A key as the error may quote it: its bad characters escaped (the response must be
    encodable), and short."""
    shown = _BAD_CHAR.sub(lambda m: f"\\u{ord(m.group()):04x}", key)
    return shown if len(shown) <= 64 else shown[:61] + "..."


def might_fail(raw: bytes, *, max_depth: int) -> bool:
    """False when ``raw`` certainly passes ``check_json`` (a scan of the bytes, no parse)."""
    brackets = raw.count(b"[") + raw.count(b"{")
    return brackets > max_depth or _SUSPECT_TEXT.search(raw) is not None


def loads_checked(raw: str | bytes, *, max_depth: int, loc: tuple[str | int, ...]) -> Any:
    """Decode and check JSON; ``ValueError`` if it is not JSON at all, ``InputRejected`` if it
    is too deep or holds text no store can keep."""
    try:
        value = json.loads(raw)
    except RecursionError as exc:
        raise _too_deep(max_depth, loc) from exc
    check_json(value, max_depth=max_depth, loc=loc)
    return value


def _too_deep(max_depth: int, loc: tuple[str | int, ...]) -> InputRejected:
    return InputRejected(f"JSON is nested deeper than {max_depth} levels", loc)


def _is_json(content_type: str | None) -> bool:
    # FastAPI decodes a body without a Content-Type as JSON, so that one is checked as well.
    if not content_type:
        return True
    kind = content_type.split(";")[0].strip().lower()
    return kind == "application/json" or (
        kind.startswith("application/") and kind.endswith("+json")
    )


def _check_url(scope: Scope) -> None:
    if "\x00" in scope.get("path", ""):
        raise InputRejected("the path must not contain a NUL character", ("path",))
    query: bytes = scope.get("query_string", b"")
    if b"%00" in query or b"\x00" in query:
        raise InputRejected("the query string must not contain a NUL character", ("query",))


class InputGuardMiddleware:
    """Refuses, with 400, requests whose URL or JSON body fails the checks above. A JSON body
    is read in full here (the body-size limit outside this middleware still bounds it) and
    handed on unchanged."""

    def __init__(self, app: ASGIApp, *, max_depth: int) -> None:
        self.app = app
        self.max_depth = max_depth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            _check_url(scope)
        except InputRejected as exc:
            await self._refuse(exc, scope, receive, send)
            return
        if scope["method"] not in _JSON_BODY_METHODS or not _is_json(
            Headers(scope=scope).get("content-type")
        ):
            await self.app(scope, receive, send)
            return
        body, more = await _read_body(receive)
        if might_fail(body, max_depth=self.max_depth):
            try:
                loads_checked(body, max_depth=self.max_depth, loc=("body",))
            except InputRejected as exc:
                await self._refuse(exc, scope, receive, send)
                return
            except ValueError:
                pass  # not JSON at all: the route answers that with its usual 422
        await self.app(scope, _replay(body, more, receive), send)

    async def _refuse(self, exc: InputRejected, scope: Scope, receive: Receive, send: Send) -> None:
        rid = scope.get("state", {}).get("request_id", "")
        response = envelope(400, exc.code, exc.message, rid, details=exc.details)
        await response(scope, receive, send)


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
