"""``ModelServer``: the scripted OpenAI and Anthropic apps on one uvicorn, in a thread.

``openai_url`` is the OpenAI SDK's ``base_url`` (``.../v1``), ``anthropic_url`` the Anthropic
SDK's (it adds ``/v1/messages`` itself).
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from starlette.applications import Starlette
from starlette.routing import Mount

from tests.conftest import HANG_GUARD
from tests.llm_servers.anthropic_app import anthropic_app
from tests.llm_servers.openai_app import openai_app
from tests.llm_servers.state import ServerState


class ModelServer:
    def __init__(self, api_key: str | None = None, port: int = 0) -> None:
        self.state = ServerState(api_key=api_key)
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", port))
        port = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        self.openai_url = f"{self.url}/openai/v1"
        self.anthropic_url = f"{self.url}/anthropic"
        app = Starlette(
            routes=[
                Mount("/openai", openai_app(self.state)),
                Mount("/anthropic", anthropic_app(self.state)),
            ]
        )
        config = uvicorn.Config(
            app,
            log_level="warning",
            lifespan="off",
            ws="none",
            http="h11",
            access_log=False,
            timeout_graceful_shutdown=1,
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
        raise RuntimeError("scripted model server did not start")

    def stop(self) -> None:
        self.state.gate.set()  # let a held stream end
        self._server.should_exit = True
        self._thread.join(HANG_GUARD)


@contextmanager
def model_server(api_key: str | None = None) -> Iterator[ModelServer]:
    server = ModelServer(api_key)
    server.start()
    try:
        yield server
    finally:
        server.stop()
