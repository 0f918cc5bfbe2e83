"""Open DynamoDB clients of the ``dynamodb`` node, reused across runs, bounded and fair.

Opening an aiobotocore client costs far more than a request (it loads the service model and
starts a connection pool: about 60 ms against 5 ms for a GetItem on loopback), so clients are
kept per (account, credentials, region, endpoint, timeout) — never shared between accounts —
with at most ``MAX_PER_ACCOUNT`` per account and ``MAX_CLIENTS`` in a process. Past a bound
the least recently used client that no node is using is closed (the account's own first); a
client in use is never closed under a request.

Per event loop, like the postgres pools; ``close_clients`` closes them (server shutdown,
the end of ``flowrunner run``, tests).
"""

from __future__ import annotations

import asyncio
import weakref
from collections import OrderedDict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

MAX_CLIENTS = 32
MAX_PER_ACCOUNT = 4

ClientKey = tuple[str, tuple[Any, ...], str, str | None, float]


@dataclass
class _Open:
    client: Any
    context: Any
    users: int = 0


@dataclass
class DynamoClients:
    _open: OrderedDict[ClientKey, _Open] = field(default_factory=OrderedDict)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    # KV tables known to exist, by (endpoint, region, table): created or described once.
    tables: set[tuple[str | None, str, str]] = field(default_factory=set)

    @asynccontextmanager
    async def client(
        self,
        account: str,
        credentials: tuple[Any, ...],
        region: str,
        endpoint: str | None,
        request_timeout: float,
    ) -> AsyncIterator[Any]:
        key: ClientKey = (account, credentials, region, endpoint, request_timeout)
        async with self._lock:
            found = self._open.get(key)
            if found is None:
                found = self._open[key] = await _open_client(
                    credentials, region, endpoint, request_timeout
                )
            self._open.move_to_end(key)
            found.users += 1
        try:
            yield found.client
        finally:
            found.users -= 1
            async with self._lock:
                await self._trim(account)

    async def _trim(self, account: str) -> None:
        mine = [k for k, o in self._open.items() if k[0] == account and o.users == 0]
        while len([k for k in self._open if k[0] == account]) > MAX_PER_ACCOUNT and mine:
            await self._close(mine.pop(0))
        idle = [k for k, o in self._open.items() if o.users == 0]
        while len(self._open) > MAX_CLIENTS and idle:
            await self._close(idle.pop(0))

    async def _close(self, key: ClientKey) -> None:
        opened = self._open.pop(key)
        await opened.context.__aexit__(None, None, None)

    async def close(self) -> None:
        async with self._lock:
            for key in list(self._open):
                await self._close(key)

    def __len__(self) -> int:
        return len(self._open)


async def _open_client(
    credentials: tuple[Any, ...], region: str, endpoint: str | None, request_timeout: float
) -> _Open:
    import aioboto3
    from botocore.config import Config

    key_id, secret, token = credentials
    session = aioboto3.Session(
        aws_access_key_id=key_id, aws_secret_access_key=secret, aws_session_token=token
    )
    context = session.client(
        "dynamodb",
        region_name=region,
        endpoint_url=endpoint,
        config=Config(
            connect_timeout=request_timeout,
            read_timeout=request_timeout,
            retries={"max_attempts": 3},
        ),
    )
    return _Open(await context.__aenter__(), context)


_REGISTRIES: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, DynamoClients] = (
    weakref.WeakKeyDictionary()
)


def clients() -> DynamoClients:
    """The running loop's clients."""
    loop = asyncio.get_running_loop()
    found = _REGISTRIES.get(loop)
    if found is None:
        found = _REGISTRIES[loop] = DynamoClients()
    return found


async def close_clients() -> None:
    found = _REGISTRIES.pop(asyncio.get_running_loop(), None)
    if found is not None:
        await found.close()
