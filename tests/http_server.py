"""A real HTTP server on 127.0.0.1 for the tests of outbound HTTP (http.request, the guard).

A small raw ASGI app served by uvicorn in a thread (its own event loop), on a socket bound
to a free port before it starts. It records what it saw (requests, disconnects) so tests
assert on the server's side too: ``seen`` holds one dict per request, ``holding`` is set
while ``/hold`` waits, ``disconnected`` once that client went away.

Routes: ``/echo`` (the request as JSON), ``/status/<code>``, ``/text``, ``/binary``,
``/problem`` (application/problem+json), ``/not-json`` (says JSON, is not), ``/slow?seconds=``,
``/hold`` (answers only when the client disconnects), ``/big?bytes=`` (streamed),
``/redirect?to=<url>&status=``, ``/hops/<n>`` (n redirects, then /echo), ``/basic``
(401 unless user:pass), ``/bearer`` (401 unless the token), ``/set-cookie``, ``/orders``
(the docs' example API).
"""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qs

import uvicorn

from tests.conftest import HANG_GUARD

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

BASIC = ("user", "pa:ss word")
TOKEN = "bearer-token-123"
ORDERS = [{"id": 1, "total": 50}, {"id": 2, "total": 150}]
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe\x00"


class TestServer:
    __test__ = False  # not a test class

    def __init__(self, tls: tuple[str, str] | None = None) -> None:
        self.seen: list[dict[str, Any]] = []
        self.holding = threading.Event()
        self.disconnected = threading.Event()
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self.port: int = self._sock.getsockname()[1]
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            self.app,
            log_level="warning",
            interface="asgi3",
            lifespan="off",
            ws="none",
            http="h11",
            access_log=False,
            timeout_graceful_shutdown=1,
            ssl_certfile=tls[0] if tls else None,
            ssl_keyfile=tls[1] if tls else None,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True
        )

    def start(self) -> None:
        self._thread.start()
        for _ in range(int(HANG_GUARD * 100)):
            if self._server.started:
                return
            threading.Event().wait(0.01)
        raise RuntimeError("test HTTP server did not start")

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(HANG_GUARD)
        self._sock.close()

    # --- the app -------------------------------------------------------------------------

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "http"
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        query = {
            k: v if len(v) > 1 else v[0]
            for k, v in parse_qs(scope["query_string"].decode()).items()
        }
        path: str = scope["path"]
        request = {
            "method": scope["method"],
            "path": path,
            "query": query,
            "headers": headers,
            "body": body.decode("utf-8", errors="replace"),
        }
        self.seen.append(request)
        await self._route(path, request, body, receive, send)

    async def _route(
        self, path: str, request: dict[str, Any], body: bytes, receive: Receive, send: Send
    ) -> None:
        query = request["query"]
        if path == "/echo":
            await _send(send, 200, json.dumps(request).encode(), "application/json")
        elif path.startswith("/status/"):
            code = int(path.rsplit("/", 1)[1])
            await _send(send, code, json.dumps({"status": code}).encode(), "application/json")
        elif path == "/text":
            await _send(send, 200, "héllo\n".encode("latin-1"), "text/plain; charset=latin-1")
        elif path == "/binary":
            await _send(send, 200, PNG, "image/png")
        elif path == "/problem":
            await _send(send, 422, b'{"title": "bad"}', "application/problem+json")
        elif path == "/not-json":
            await _send(send, 200, b"{oops", "application/json")
        elif path == "/slow":
            await asyncio.sleep(float(query.get("seconds", "5")))
            await _send(send, 200, b"late", "text/plain")
        elif path == "/hold":
            self.holding.set()
            while (await receive())["type"] != "http.disconnect":
                pass
            self.disconnected.set()
        elif path == "/big":
            await _stream(send, int(query["bytes"]))
        elif path == "/redirect":
            status = int(query.get("status", "302"))
            await _send(send, status, b"", "text/plain", [(b"location", query["to"].encode())])
        elif path.startswith("/hops/"):
            left = int(path.rsplit("/", 1)[1])
            to = f"/hops/{left - 1}" if left > 1 else "/echo"
            await _send(send, 302, b"", "text/plain", [(b"location", to.encode())])
        elif path == "/basic":
            expected = "Basic " + base64.b64encode(":".join(BASIC).encode()).decode()
            ok = request["headers"].get("authorization") == expected
            await _send(
                send,
                200 if ok else 401,
                b'{"ok": %s}' % (b"true" if ok else b"false"),
                "application/json",
            )
        elif path == "/orders":  # the docs' example API
            await _send(send, 200, json.dumps(ORDERS).encode(), "application/json")
        elif path == "/set-cookie":
            cookie = [(b"set-cookie", b"session=s3cr3t; Path=/")]
            await _send(send, 200, b"set", "text/plain", cookie)
        elif path == "/bearer":
            ok = request["headers"].get("authorization") == f"Bearer {TOKEN}"
            await _send(send, 200 if ok else 401, b"", "text/plain")
        else:
            await _send(send, 404, b"not found", "text/plain")


async def _send(
    send: Send,
    status: int,
    body: bytes,
    content_type: str,
    extra: list[tuple[bytes, bytes]] | None = None,
) -> None:
    headers = [(b"content-type", content_type.encode()), *(extra or [])]
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _stream(send: Send, size: int) -> None:
    """``size`` bytes with no Content-Length, so only counting while reading can stop them."""
    headers = [(b"content-type", b"application/octet-stream")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    chunk = b"x" * 65536
    sent = 0
    while sent < size:
        part = chunk[: size - sent]
        sent += len(part)
        await send({"type": "http.response.body", "body": part, "more_body": sent < size})


@contextmanager
def running_server(tls: tuple[str, str] | None = None) -> Iterator[TestServer]:
    """A started server (HTTPS with ``tls``: paths of a certificate and its key)."""
    server = TestServer(tls)
    server.start()
    try:
        yield server
    finally:
        server.stop()
