"""The HTTP protocol ``flowrunner serve`` gives uvicorn: its httptools protocol, with the
writes of one event-loop turn sent to the socket together.

uvicorn writes a response's status line and headers when the app sends
``http.response.start`` and the body when it sends ``http.response.body``: two ``send``
calls on the socket for every response, where the app sends both in one go. On loopback a
``send`` is the kernel delivering the segment and waking the reader, inside the call and
while the event loop holds the GIL: profiled under 8 clients posting runs, the header write
alone was ~20% of the server's GIL-holding samples and the body write another ~7%. Here the
writes made in one turn of the loop are held and handed to the socket in one vectored write
at the end of the turn (``call_soon``), so a response is one ``send``; a streamed response
still goes out chunk by chunk, each turn's chunks together.

Everything else about the transport is the real one's; ``close`` and the other calls that
depend on the order of the bytes send what is held first. A WebSocket upgrade hands the real
transport to the WebSocket protocol.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

# Held bytes past this go to the socket at once: the transport's flow control (uvicorn
# pauses a streaming app while the socket's buffer is full) must see a big response.
_HOLD_BYTES = 65_536


class TurnWrites:
    """A transport whose writes wait for the end of the loop's turn and go out together."""

    __slots__ = ("_held", "_held_bytes", "_loop", "transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self.transport = transport
        self._loop = loop
        self._held: list[bytes] | None = None
        self._held_bytes = 0

    def write(self, data: bytes) -> None:
        if not data:
            return
        if self._held is None:
            self._held = [data]
            self._held_bytes = len(data)
            self._loop.call_soon(self.flush)
        else:
            self._held.append(data)
            self._held_bytes += len(data)
        if self._held_bytes > _HOLD_BYTES:
            self.flush()

    def writelines(self, chunks: Any) -> None:
        for data in chunks:
            self.write(data)

    def flush(self) -> None:
        held, self._held = self._held, None
        # The peer may have gone in the meantime; the bytes have nowhere to go then, as a
        # direct write would have found too.
        if not held or self.transport.is_closing():
            return
        if len(held) == 1:
            self.transport.write(held[0])
        else:
            self.transport.writelines(held)

    def close(self) -> None:
        self.flush()
        self.transport.close()

    def write_eof(self) -> None:
        self.flush()
        self.transport.write_eof()

    def abort(self) -> None:
        self._held = None
        self.transport.abort()

    def get_write_buffer_size(self) -> int:
        held = self._held
        return self.transport.get_write_buffer_size() + (sum(map(len, held)) if held else 0)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)


class TurnWritesProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol writing through ``TurnWrites``."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        # The request cycles write through self.transport; flow control (pause/resume
        # reading) keeps the real one, which FlowControl took above.
        self.transport = TurnWrites(transport, self.loop)  # type: ignore[assignment]

    def handle_websocket_upgrade(self) -> None:
        if isinstance(self.transport, TurnWrites):
            self.transport.flush()
            self.transport = self.transport.transport
        super().handle_websocket_upgrade()
