"""A TCP server on loopback that accepts connections and never answers: for timeouts and
cancellation of requests in flight."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field


@dataclass
class Silent:
    port: int
    connected: asyncio.Event = field(default_factory=asyncio.Event)


@asynccontextmanager
async def silent_server() -> AsyncIterator[Silent]:
    writers: list[asyncio.StreamWriter] = []
    state: Silent | None = None

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        assert state is not None
        state.connected.set()
        await reader.read()  # until the client gives up

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    state = Silent(server.sockets[0].getsockname()[1])
    try:
        yield state
    finally:
        for writer in writers:
            writer.close()
        server.close()
        await server.wait_closed()
