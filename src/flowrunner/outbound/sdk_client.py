"""The SSRF-guarded client for SDKs built on ``httpx2`` (the ``openai`` and ``anthropic`` SDKs).

Those SDKs take an ``httpx2.AsyncClient`` as ``http_client``, a fork of httpx on its own
connection core (``httpcore2``), so the httpx client of client.py cannot be handed to them.
This one applies the same rules the same way: every TCP connection goes through
``GuardedBackend.vetted`` (resolve once, check every address, connect to a checked address by
IP), proxies from the environment are ignored, no cookies are kept, redirects not followed.

A refused destination surfaces as ``DestinationRefused``; an SDK wraps it in its own
connection error, so callers look for it in the exception's ``__cause__`` chain.
"""

from __future__ import annotations

import asyncio
import ssl
import weakref
from collections.abc import AsyncIterator, Iterable
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Any

import httpcore
import httpcore2
import httpx2

from flowrunner.errors import DestinationRefused
from flowrunner.outbound.backend import GuardedBackend, Resolve, system_resolve
from flowrunner.outbound.policy import AddressPolicy

DEFAULT_MAX_CONNECTIONS = 100


class GuardedBackend2(httpcore2.AsyncNetworkBackend):
    """``GuardedBackend``'s checks in front of httpcore2's own network backend."""

    def __init__(self, policy: AddressPolicy, resolve: Resolve = system_resolve) -> None:
        self._guard = GuardedBackend(policy, resolve)
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
            addresses = await self._guard.vetted(host, port, timeout)
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
        raise DestinationRefused("refused to connect to a Unix socket", reason="unix socket")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class GuardedTransport2(httpx2.AsyncHTTPTransport):
    """httpx2's transport with its pool rebuilt on ``GuardedBackend2`` (as client.py does)."""

    def __init__(
        self,
        policy: AddressPolicy,
        *,
        resolve: Resolve = system_resolve,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        super().__init__(trust_env=False, http2=False)
        self._pool = httpcore2.AsyncConnectionPool(
            ssl_context=ssl_context or httpx2.create_ssl_context(trust_env=False),
            max_connections=max_connections,
            max_keepalive_connections=min(20, max_connections),
            keepalive_expiry=5.0,
            http1=True,
            http2=False,
            network_backend=GuardedBackend2(policy, resolve),
        )


def guarded_sdk_client(
    policy: AddressPolicy,
    *,
    resolve: Resolve = system_resolve,
    max_connections: int = DEFAULT_MAX_CONNECTIONS,
) -> httpx2.AsyncClient:
    """A new ``httpx2`` client reaching only what ``policy`` allows."""
    return httpx2.AsyncClient(
        transport=GuardedTransport2(policy, resolve=resolve, max_connections=max_connections),
        trust_env=False,
        follow_redirects=False,
        cookies=CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])),  # stores none
        timeout=None,  # every request passes its own
    )


_SHARED: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, dict[AddressPolicy, tuple[httpx2.AsyncClient, AsyncIterator[None]]]
] = weakref.WeakKeyDictionary()


async def shared_sdk_client(policy: AddressPolicy) -> httpx2.AsyncClient:
    """The running loop's pooled ``httpx2`` client for ``policy`` (closed with the loop, as
    ``shared_client``'s): SDK clients are cheap wrappers, their connections live here."""
    loop = asyncio.get_running_loop()
    clients = _SHARED.setdefault(loop, {})
    entry = clients.get(policy)
    if entry is not None and not entry[0].is_closed:
        return entry[0]
    client = guarded_sdk_client(policy)
    closer = _close_at_loop_shutdown(client)
    await anext(closer)
    clients[policy] = (client, closer)
    return client


async def _close_at_loop_shutdown(client: httpx2.AsyncClient) -> AsyncIterator[None]:
    try:
        yield
    finally:
        await client.aclose()


def refused_cause(exc: BaseException) -> DestinationRefused | None:
    """The ``DestinationRefused`` an SDK error wraps, if any."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, DestinationRefused):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None
