"""The SSRF-guarded httpx client, and the one pooled client each event loop shares.

``guarded_client`` builds an ``httpx.AsyncClient`` whose every connection goes through
``GuardedBackend`` (see backend.py), that ignores proxy environment variables (a proxy would
connect for us, past the guard), keeps no cookies (the client is shared by every run of every
account: one run's session cookie must never ride along with another's request) and never
follows redirects itself (callers follow them hop by hop, checking each URL).

``shared_client`` hands out one such client per event loop and policy, so every http.request
node of a process draws on the same connection pool (a server runs one loop; a test may run
several, one after the other, and a client's connections belong to the loop that opened them).
Its connections are shared fairly between accounts (``request_slot``): at most half of them
serve one account at a time, and a freed one goes to the account holding the fewest, so one
account's thousand parallel requests queue behind their own cap, never in front of another
account's first.

The client is closed when its loop shuts down: the loop closes still-running async generators
at the end of ``asyncio.run`` (``shutdown_asyncgens``), so a small generator holding the
client closes it there, with no shutdown hook to wire into each entry point.
"""

from __future__ import annotations

import asyncio
import ssl
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from http.cookiejar import CookieJar, DefaultCookiePolicy

import httpcore
import httpx

from flowrunner.fairness import ACCOUNT_ID, FairSemaphore
from flowrunner.outbound.backend import GuardedBackend, Resolve, system_resolve
from flowrunner.outbound.policy import AddressPolicy

DEFAULT_MAX_CONNECTIONS = 100


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport with its connection pool rebuilt on ``GuardedBackend`` (httpx has
    no parameter for the network backend; the pool is its documented seam)."""

    def __init__(
        self,
        policy: AddressPolicy,
        *,
        resolve: Resolve = system_resolve,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        # One TLS context for both: httpx's own pool (replaced below) would load the trust
        # store a second time (~25 ms and ~2 MB a context).
        context = ssl_context or httpx.create_ssl_context(trust_env=False)
        super().__init__(verify=context, trust_env=False, http2=False)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=context,
            max_connections=max_connections,
            max_keepalive_connections=min(20, max_connections),
            keepalive_expiry=5.0,
            http1=True,
            http2=False,
            network_backend=GuardedBackend(policy, resolve),
        )


def guarded_client(
    policy: AddressPolicy,
    *,
    resolve: Resolve = system_resolve,
    max_connections: int = DEFAULT_MAX_CONNECTIONS,
    ssl_context: ssl.SSLContext | None = None,
) -> httpx.AsyncClient:
    """A new client that reaches only what ``policy`` allows (close it with ``aclose``);
    ``ssl_context`` replaces the default trust store (certifi)."""
    transport = GuardedTransport(
        policy, resolve=resolve, max_connections=max_connections, ssl_context=ssl_context
    )
    return httpx.AsyncClient(
        transport=transport,
        trust_env=False,
        follow_redirects=False,
        cookies=CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])),  # stores none
        timeout=None,  # every request passes its own
    )


_Key = tuple[AddressPolicy, int]
_SHARED: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, dict[_Key, tuple[httpx.AsyncClient, AsyncIterator[None]]]
] = weakref.WeakKeyDictionary()


async def shared_client(
    policy: AddressPolicy, *, max_connections: int = DEFAULT_MAX_CONNECTIONS
) -> httpx.AsyncClient:
    """The running loop's pooled client for ``policy`` (created on first use)."""
    loop = asyncio.get_running_loop()
    clients = _SHARED.setdefault(loop, {})
    key = (policy, max_connections)
    entry = clients.get(key)
    if entry is not None and not entry[0].is_closed:
        return entry[0]
    client = guarded_client(policy, max_connections=max_connections)
    closer = _close_at_loop_shutdown(client)
    await anext(closer)  # started: the loop now tracks it and closes it at shutdown
    clients[key] = (client, closer)
    return client


async def _close_at_loop_shutdown(client: httpx.AsyncClient) -> AsyncIterator[None]:
    try:
        yield
    finally:
        await client.aclose()


_SLOTS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[int, FairSemaphore]] = (
    weakref.WeakKeyDictionary()
)


@asynccontextmanager
async def request_slot(max_connections: int = DEFAULT_MAX_CONNECTIONS) -> AsyncIterator[None]:
    """Hold one of the loop's ``max_connections`` request slots for the body, waiting fairly
    between accounts (``fairness.ACCOUNT_ID``; each account at most half of them)."""
    slots = _SLOTS.setdefault(asyncio.get_running_loop(), {})
    semaphore = slots.get(max_connections)
    if semaphore is None:
        semaphore = slots[max_connections] = FairSemaphore(
            max_connections, per_key=max(1, max_connections // 2)
        )
    key = ACCOUNT_ID.get()
    await semaphore.acquire(key)
    try:
        yield
    finally:
        semaphore.release(key)
