"""``http.request``: call an HTTP API, behind the SSRF guard.

Each visit resolves its params into a request (http_params.py), sends it on the process's
shared, pooled client (flowrunner.outbound), follows redirects hop by hop (at most
``MAX_REDIRECTS``, each hop's URL checked; the address each connection reaches is checked by
the client's network backend), and reads the body up to the size limit. The action is the
status class: ``success`` (2xx), ``client_error`` (4xx), ``server_error`` (5xx); a node whose
``next`` has no edge for it follows ``default``. A connection error, a timeout, a refused
destination, an oversize response or a param that resolved to something unusable fail the
node (so ``retry`` and an ``error`` edge apply). Cancelling the run cancels the request: the
connection is closed mid-flight.
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any, ClassVar

import httpx

from flowrunner.config import load_settings
from flowrunner.errors import DestinationRefused, ExecutionError
from flowrunner.nodes.base import Call, DefinedNode, DefinedNodeType
from flowrunner.nodes.http_params import PARAMS_SCHEMA, ParamError, RequestParts, request_parts
from flowrunner.nodes.spec import BuildEnv
from flowrunner.outbound import AddressPolicy, request_slot, shared_client

MAX_REDIRECTS = 10
_TEXT_TYPES = frozenset(
    {
        "application/xml",
        "application/javascript",
        "application/x-www-form-urlencoded",
        "application/x-ndjson",
        "application/yaml",
        "application/graphql",
    }
)
_BINARY_TYPES = frozenset(
    {"application/octet-stream", "application/pdf", "application/zip", "application/gzip"}
)
_BINARY_FAMILIES = frozenset({"image", "audio", "video", "font"})


class HttpRequestFailed(ExecutionError):
    """The request could not be made or its response not read (timeout, connection refused,
    too many redirects, oversize body)."""

    code = "http_request_failed"


class HttpRequestNode(DefinedNode):
    __slots__ = ("_max_bytes", "_max_connections", "_policy", "_request_timeout")

    actions: ClassVar[frozenset[str] | None] = frozenset(
        {"success", "client_error", "server_error"}
    )

    def setup(self, env: BuildEnv) -> None:
        settings = load_settings()
        try:
            self._policy = AddressPolicy.from_settings(
                settings.http_allow_private, settings.http_allow
            )
        except ValueError as exc:
            raise ExecutionError(str(exc)) from exc
        self._max_bytes = settings.http_max_response_bytes
        self._request_timeout = settings.http_timeout_seconds
        self._max_connections = settings.http_max_connections

    async def work(self, call: Call) -> Any:
        parts = request_parts(self.node_id, call.params, self._request_timeout)
        client = await shared_client(self._policy, max_connections=self._max_connections)
        try:
            async with request_slot(self._max_connections):  # fair between accounts
                started = time.perf_counter()
                response, data = await self._exchange(client, parts)
        except DestinationRefused as exc:
            raise DestinationRefused(
                f"node '{self.node_id}': {exc.message}", node_id=self.node_id, **exc.context
            ) from exc
        except httpx.TimeoutException as exc:
            raise self._failed(
                parts, f"timed out after {parts.timeout:g} s ({_phase(exc)})"
            ) from exc
        except httpx.HTTPError as exc:
            raise self._failed(parts, f"{type(exc).__name__}: {exc}") from exc
        timing_ms = round((time.perf_counter() - started) * 1000, 3)
        call.action = _action(response.status_code)
        return _output(response, data, parts, timing_ms)

    async def _exchange(
        self, client: httpx.AsyncClient, parts: RequestParts
    ) -> tuple[httpx.Response, bytes]:
        """Send the request, following redirects; the last response and its body."""
        try:
            url = httpx.URL(parts.url)
            if parts.query:  # added to the URL's own query (httpx's params= would replace it)
                url = url.copy_with(params=url.params.merge(parts.query))
        except httpx.InvalidURL as exc:
            raise ParamError(
                f"node '{self.node_id}': param url: {exc}", node_id=self.node_id
            ) from exc
        try:
            request = client.build_request(
                parts.method,
                url,
                headers=parts.headers,
                content=parts.content,
                data=parts.data,
                files=parts.files,
                timeout=parts.timeout,
            )
        except (UnicodeEncodeError, ValueError, TypeError) as exc:  # a header httpx cannot send
            raise ParamError(
                f"node '{self.node_id}': param headers: {exc}", node_id=self.node_id
            ) from exc
        origin = request.url.copy_with(path="/", query=None, fragment=None)
        for _hop in range(MAX_REDIRECTS + 1):
            self._policy.check_url(str(request.url))
            response = await client.send(request, stream=True)
            try:
                if not (parts.follow_redirects and response.next_request is not None):
                    return response, await self._read(response, parts)
                request = response.next_request
            finally:
                await response.aclose()
            if request.url.copy_with(path="/", query=None, fragment=None) != origin:
                for name in parts.credential_headers:  # httpx drops Authorization itself
                    request.headers.pop(name, None)
        raise self._failed(parts, f"more than {MAX_REDIRECTS} redirects")

    async def _read(self, response: httpx.Response, parts: RequestParts) -> bytes:
        """The (decoded) body, failing as soon as it passes the limit: never buffered whole."""
        limit = self._max_bytes
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise self._oversize(parts, limit)
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > limit:
                raise self._oversize(parts, limit)
            chunks.append(chunk)
        return b"".join(chunks)

    def _oversize(self, parts: RequestParts, limit: int) -> HttpRequestFailed:
        return self._failed(
            parts,
            f"response body is larger than the limit of {limit} bytes "
            "(FLOWRUNNER_HTTP_MAX_RESPONSE_BYTES)",
        )

    def _failed(self, parts: RequestParts, why: str) -> HttpRequestFailed:
        return HttpRequestFailed(
            f"node '{self.node_id}': {parts.method} {parts.url}: {why}", node_id=self.node_id
        )


def _phase(exc: httpx.TimeoutException) -> str:
    return {
        httpx.ConnectTimeout: "connecting",
        httpx.ReadTimeout: "waiting for the response",
        httpx.WriteTimeout: "sending the request",
        httpx.PoolTimeout: "waiting for a free connection",
    }.get(type(exc), "timeout")


def _action(status: int) -> str | None:
    if 200 <= status < 300:
        return "success"
    if 400 <= status < 500:
        return "client_error"
    if 500 <= status < 600:
        return "server_error"
    return None  # 1xx, 3xx not followed: the default edge


def _output(
    response: httpx.Response, data: bytes, parts: RequestParts, timing_ms: float
) -> dict[str, Any]:
    content_type = response.headers.get("content-type", "")
    body, raw, binary = _body(data, content_type, response.charset_encoding)
    headers: dict[str, str] = {}
    for name, value in response.headers.multi_items():
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return {
        "status_code": response.status_code,
        "headers": headers,
        "body": body,
        "raw_body": raw,
        "binary": binary,
        "metadata": {
            "content_type": content_type,
            "content_length": len(data),
            "request_url": str(response.request.url),
            "request_method": response.request.method,
            "timing_ms": timing_ms,
        },
        "success": 200 <= response.status_code < 300,
        "timing_ms": timing_ms,
    }


def _body(data: bytes, content_type: str, charset: str | None) -> tuple[Any, str, bool]:
    """(body, raw_body, binary): parsed JSON when the media type says JSON (``+json`` too),
    text when it is text or decodes as such, else base64 (in both) with ``binary`` true."""
    media = content_type.split(";", 1)[0].strip().lower()
    is_json = media == "application/json" or media.endswith("+json")
    if media in _BINARY_TYPES or media.split("/", 1)[0] in _BINARY_FAMILIES:
        return _base64(data)
    textual = is_json or media.startswith("text/") or media in _TEXT_TYPES
    textual = textual or media.endswith("+xml") or charset is not None
    try:
        text = data.decode(charset or "utf-8")
    except (UnicodeDecodeError, LookupError):
        if not textual:  # no media type saying text, and not text: bytes
            return _base64(data)
        text = data.decode("utf-8", errors="replace")
    if is_json and text.strip():
        try:
            return json.loads(text), text, False
        except ValueError:
            return text, text, False  # says JSON but is not: the text, as the original
    return text, text, False


def _base64(data: bytes) -> tuple[str, str, bool]:
    encoded = base64.b64encode(data).decode()
    return encoded, encoded, True


HTTP_REQUEST = DefinedNodeType(
    "http.request",
    "Send an HTTP request (url, method, headers, query, body / form_data / files, auth); the "
    "output is the response (status_code, headers, body, raw_body, metadata, success). "
    "Action: success (2xx), client_error (4xx), server_error (5xx), else default.",
    HttpRequestNode,
    PARAMS_SCHEMA,
)

# (type, aliases) of this module's built-ins.
HTTP_TYPES: list[tuple[DefinedNodeType, tuple[str, ...]]] = [(HTTP_REQUEST, ())]
