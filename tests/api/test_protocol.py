"""api.protocol: the writes of one loop turn go to the socket together, through a real
uvicorn server on loopback (the protocol ``flowrunner serve`` uses), with the real
transport's writes recorded."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import uvicorn
import websockets

from flowrunner.api.protocol import TurnWritesProtocol

Scope = dict[str, Any]

# What the real transports were asked to send, one entry per socket write: bytes joined.
sent: list[bytes] = []


class _Recorded:
    """The real transport, with each write (or vectored write) recorded as one."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport

    def write(self, data: bytes) -> None:
        sent.append(bytes(data))
        self._transport.write(data)

    def writelines(self, chunks: list[bytes]) -> None:
        sent.append(b"".join(chunks))
        self._transport.writelines(chunks)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class RecordedProtocol(TurnWritesProtocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(_Recorded(transport))  # type: ignore[arg-type]


async def app(scope: Scope, receive: Any, send: Any) -> None:
    if scope["type"] == "websocket":
        await receive()  # connect
        await send({"type": "websocket.accept"})
        message = await receive()
        await send({"type": "websocket.send", "text": "echo " + message["text"]})
        await send({"type": "websocket.close", "code": 1000})
        return
    if scope["path"] == "/stream":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for part in (b"one ", b"two ", b"three"):
            await send({"type": "http.response.body", "body": part, "more_body": True})
            await asyncio.sleep(0.01)  # each part in a later turn of the loop
        await send({"type": "http.response.body", "body": b""})
        return
    if scope["path"] == "/big":  # 1 MiB in 16 KiB parts, sent without yielding
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for i in range(64):
            part = bytes([65 + i % 26]) * 16_384
            await send({"type": "http.response.body", "body": part, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        return
    body = b'{"ok": true}'
    headers = [(b"content-type", b"application/json"), (b"content-length", b"12")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


@asynccontextmanager
async def served() -> AsyncIterator[str]:
    sent.clear()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app, http=RecordedProtocol, lifespan="off", log_level="warning", access_log=False
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:  # noqa: ASYNC110 (uvicorn offers no event for it)
        await asyncio.sleep(0.01)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def test_a_response_is_one_socket_write() -> None:
    async with served() as address, httpx.AsyncClient(base_url=f"http://{address}") as client:
        for _ in range(3):  # one keep-alive connection
            answer = await client.get("/json")
            assert answer.status_code == 200
            assert answer.json() == {"ok": True}
    assert len(sent) == 3
    for write in sent:
        assert write.startswith(b"HTTP/1.1 200 OK\r\n")
        assert write.endswith(b'\r\n\r\n{"ok": true}')


async def test_a_streamed_response_goes_out_turn_by_turn_in_order() -> None:
    async with served() as address, httpx.AsyncClient(base_url=f"http://{address}") as client:
        answer = await client.get("/stream")
    assert answer.text == "one two three"
    # The headers with the first part, then one write per later turn (the last part and
    # the end of the chunked body may share one).
    assert sent[0].startswith(b"HTTP/1.1 200 OK\r\n")
    assert sent[0].endswith(b"4\r\none \r\n")
    assert len(sent) >= 3
    assert b"".join(sent).endswith(b"5\r\nthree\r\n0\r\n\r\n")


async def test_a_big_response_is_not_held_back_whole() -> None:
    async with served() as address, httpx.AsyncClient(base_url=f"http://{address}") as client:
        answer = await client.get("/big")
    assert answer.content == b"".join(bytes([65 + i % 26]) * 16_384 for i in range(64))
    # Handed to the socket as it grows past the hold limit, so the transport's flow
    # control sees it: no write holds more than the limit and one part.
    assert len(sent) > 8
    assert max(map(len, sent)) <= 65_536 + 16_384 + 64


async def test_connection_close_sends_the_whole_response_first() -> None:
    async with served() as address:
        host, port = address.split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(b"GET /json HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        received = await reader.read()  # until the server closes
        writer.close()
    assert received.startswith(b"HTTP/1.1 200 OK\r\n")
    assert received.endswith(b'{"ok": true}')
    assert len(sent) == 1


async def test_websocket_upgrade_uses_the_real_transport() -> None:
    async with served() as address, websockets.connect(f"ws://{address}/ws") as ws:
        await ws.send("hi")
        assert await ws.recv() == "echo hi"
