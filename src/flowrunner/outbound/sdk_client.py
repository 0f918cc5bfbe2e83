"""The pooled SSRF-guarded httpx2 client the model SDKs (``openai``, ``anthropic``) share.

Both SDKs take an ``httpx2.AsyncClient`` as ``http_client``; ``guarded_httpx2_client``
(httpx2_client.py) is the guarded one. An SDK client is a thin wrapper made per call (its key
lives only as long as the call), so the connections live here instead: one client per event
loop and policy, closed when its loop shuts down (as ``shared_client``'s). Replies are
bounded: one past ``MAX_REPLY_BYTES`` (a stream included) fails while it is read.

A refused destination surfaces as ``DestinationRefused``, which an SDK wraps in its own
connection error: ``wrapped`` finds it (or a ``ResponseTooLarge``) in the cause chain.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator

import httpx2

from flowrunner.outbound.client import DEFAULT_MAX_CONNECTIONS
from flowrunner.outbound.httpx2_client import guarded_httpx2_client
from flowrunner.outbound.policy import AddressPolicy

MAX_REPLY_BYTES = 32 << 20

_SHARED: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop,
    dict[AddressPolicy, tuple[httpx2.AsyncClient, AsyncIterator[None]]],
] = weakref.WeakKeyDictionary()


async def shared_sdk_client(policy: AddressPolicy) -> httpx2.AsyncClient:
    """The running loop's pooled guarded httpx2 client for ``policy`` (made on first use)."""
    loop = asyncio.get_running_loop()
    clients = _SHARED.setdefault(loop, {})
    entry = clients.get(policy)
    if entry is not None and not entry[0].is_closed:
        return entry[0]
    client = guarded_httpx2_client(
        policy, max_connections=DEFAULT_MAX_CONNECTIONS, max_response_bytes=MAX_REPLY_BYTES
    )
    closer = _close_at_loop_shutdown(client)
    await anext(closer)  # started: the loop now tracks it and closes it at shutdown
    clients[policy] = (client, closer)
    return client


async def _close_at_loop_shutdown(client: httpx2.AsyncClient) -> AsyncIterator[None]:
    try:
        yield
    finally:
        await client.aclose()


def wrapped(exc: BaseException, kind: type[BaseException]) -> BaseException | None:
    """The ``kind`` exception in ``exc``'s cause/context chain, if any."""
    seen: BaseException | None = exc
    for _ in range(20):  # chains are short; a cycle must not loop
        if seen is None:
            return None
        if isinstance(seen, kind):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None
