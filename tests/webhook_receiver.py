"""A webhook receiver on 127.0.0.1 for the tests: a real HTTP server in a thread that records
every request (headers, body, arrival time) and answers with scripted status codes.

``answers`` is consumed one per request (then 200); ``received`` holds what arrived, and
``wait_for(n)`` blocks until ``n`` requests did (bounded by the hang guard only).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.conftest import HANG_GUARD


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float  # time.monotonic() on arrival

    def json(self) -> Any:
        import json

        return json.loads(self.body)


class Receiver:
    def __init__(self) -> None:
        self.received: list[Received] = []
        self.answers: list[int] = []
        # While set to an unset Event, requests wait for it before answering (a slow receiver).
        self.gate: threading.Event | None = None
        self.in_flight = 0
        self.most_in_flight = 0
        self._changed = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # the http.server API
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length)
                with receiver._changed:
                    status = receiver.answers.pop(0) if receiver.answers else 200
                    receiver.received.append(
                        Received(self.path, dict(self.headers.items()), body, time.monotonic())
                    )
                    receiver.in_flight += 1
                    receiver.most_in_flight = max(receiver.most_in_flight, receiver.in_flight)
                    receiver._changed.notify_all()
                    gate = receiver.gate
                if gate is not None:
                    gate.wait(HANG_GUARD)
                with receiver._changed:
                    receiver.in_flight -= 1
                reply = b'{"ok": true}' if status < 300 else b'{"error": "nope"}'
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def wait_for(self, count: int, timeout: float = HANG_GUARD) -> list[Received]:
        with self._changed:
            if not self._changed.wait_for(lambda: len(self.received) >= count, timeout):
                raise AssertionError(f"{len(self.received)} of {count} webhooks arrived")
            return list(self.received)

    def of_type(self, event_type: str) -> list[Received]:
        return [r for r in list(self.received) if r.json().get("type") == event_type]


@contextmanager
def receiving() -> Iterator[Receiver]:
    receiver = Receiver()
    receiver._thread.start()
    try:
        yield receiver
    finally:
        receiver._server.shutdown()
        receiver._server.server_close()
