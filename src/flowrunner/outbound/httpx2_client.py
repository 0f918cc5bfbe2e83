"""The SSRF-guarded client for libraries built on httpx2 (the ``mcp`` SDK's HTTP transport).

The ``mcp`` SDK (2.x) talks HTTP through ``httpx2``/``httpcore2``, a fork of httpx with the
same seams but its own classes: our httpx client cannot be handed to it. This module builds
the httpx2 twin of ``guarded_client``: its pool's network backend resolves and checks every
address with the same ``GuardedBackend.vetted`` as the httpx one (one policy, one set of
rules), then connects by the address it checked; proxies from the environment are ignored
and no cookies are kept. httpcore's connect errors are translated into httpcore2's, so the
library above sees the errors it knows.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any

import httpcore
import httpcore2
import httpx2

from flowrunner.outbound.backend import GuardedBackend, Resolve, system_resolve
from flowrunner.outbound.policy import AddressPolicy

__all__ = ["OVERSIZE", "ResponseTooLarge", "guarded_httpx2_client"]

# Starts the message of ResponseTooLarge: a library that re-wraps the error in its own (the
# mcp SDK turns it into a JSON-RPC error) keeps the text, by which it is recognised.
OVERSIZE = "response body over the limit of"


class ResponseTooLarge(httpx2.SSEError, httpx2.StreamError):
    """A response body passed the client's byte limit while it was read (never buffered
    past it). Both a transport error and a stream error: the mcp SDK catches each on one of
    its paths (SSE, JSON) and reports it as a failed request rather than hanging."""


class _BoundedStream(httpx2.AsyncByteStream):
    def __init__(self, inner: httpx2.AsyncByteStream, limit: int) -> None:
        self._inner = inner
        self._limit = limit

    async def __aiter__(self) -> AsyncIterator[bytes]:
        size = 0
        async for chunk in self._inner:
            size += len(chunk)
            if size > self._limit:
                raise ResponseTooLarge(f"{OVERSIZE} {self._limit} bytes")
            yield chunk

    async def aclose(self) -> None:
        await self._inner.aclose()


class GuardedBackend2(httpcore2.AsyncNetworkBackend):
    """httpcore2 backend: connects only to addresses ``policy`` allows, by the address checked."""

    def __init__(self, policy: AddressPolicy, resolve: Resolve = system_resolve) -> None:
        self._vetting = GuardedBackend(policy, resolve)
        self._inner = httpcore2.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109  # httpcore2's interface
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        try:
            addresses = await self._vetting.vetted(host, port, timeout)
        except httpcore.ConnectTimeout as exc:
            raise httpcore2.ConnectTimeout(str(exc)) from exc
        except httpcore.ConnectError as exc:
            raise httpcore2.ConnectError(str(exc)) from exc
        failure: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except (httpcore2.ConnectError, httpcore2.ConnectTimeout) as exc:
                failure = exc
        raise failure or httpcore2.ConnectError(f"cannot connect to '{host}'")

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109  # httpcore2's interface
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        return await self._vetting.connect_unix_socket(path)  # type: ignore[return-value]  # raises

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _GuardedTransport2(httpx2.AsyncHTTPTransport):
    def __init__(
        self,
        policy: AddressPolicy,
        resolve: Resolve,
        max_connections: int,
        max_response_bytes: int | None,
    ) -> None:
        super().__init__(trust_env=False)
        self._max_response_bytes = max_response_bytes
        self._pool = httpcore2.AsyncConnectionPool(
            ssl_context=httpx2.create_ssl_context(trust_env=False),
            max_connections=max_connections,
            max_keepalive_connections=max_connections,
            keepalive_expiry=5.0,
            http1=True,
            http2=False,
            network_backend=GuardedBackend2(policy, resolve),
        )

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        response = await super().handle_async_request(request)
        # A GET is a long-lived stream of server events (each bounded by the caller's event
        # size limit); any other response is one answer and must fit the limit whole.
        if self._max_response_bytes is None or request.method == "GET":
            return response
        stream = response.stream
        assert isinstance(stream, httpx2.AsyncByteStream)
        return httpx2.Response(
            status_code=response.status_code,
            headers=response.headers,
            stream=_BoundedStream(stream, self._max_response_bytes),
            extensions=response.extensions,
        )


def guarded_httpx2_client(
    policy: AddressPolicy,
    *,
    headers: Mapping[str, str] | None = None,
    timeout: float = 30.0,
    resolve: Resolve = system_resolve,
    max_connections: int = 4,
    max_response_bytes: int | None = None,
) -> httpx2.AsyncClient:
    """A new httpx2 client that reaches only what ``policy`` allows (close it with ``aclose``).

    ``timeout`` bounds connecting, writing and each read (a streamed response included);
    a response to anything but a GET past ``max_response_bytes`` raises ResponseTooLarge.
    """
    return httpx2.AsyncClient(
        transport=_GuardedTransport2(policy, resolve, max_connections, max_response_bytes),
        trust_env=False,
        follow_redirects=False,
        headers=dict(headers or {}),
        timeout=httpx2.Timeout(timeout),
    )
