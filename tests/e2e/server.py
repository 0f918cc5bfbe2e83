"""A real ``flowrunner serve`` process for end-to-end tests, on 127.0.0.1 and a free port."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import httpx
from cryptography.fernet import Fernet

from tests.conftest import HANG_GUARD

ADMIN = ("admin", "admin-password-1")
ENDED = ("completed", "failed", "canceled")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Server:
    """Starts (and restarts) one server on one data dir; always killed by ``stop``.

    As a context manager it is started on entry and stopped on exit, whatever happened.
    """

    def __init__(self, data_dir: Path, *, serve_args: Sequence[str] = (), **settings: Any) -> None:
        self.data_dir = data_dir
        self.serve_args = list(serve_args)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}/api/v1/ws"
        self.env = {
            **os.environ,
            "FLOWRUNNER_DATA_DIR": str(data_dir),
            "FLOWRUNNER_STORAGE": "sqlite",
            "FLOWRUNNER_SECRET_KEYS": Fernet.generate_key().decode(),
            "FLOWRUNNER_ADMIN_USERNAME": ADMIN[0],
            "FLOWRUNNER_ADMIN_PASSWORD": ADMIN[1],
            **{f"FLOWRUNNER_{k.upper()}": str(v) for k, v in settings.items()},
        }
        self.process: subprocess.Popen[bytes] | None = None
        self._terminated = False
        self.log = data_dir / "server.log"

    def start(self, timeout: float = HANG_GUARD) -> None:
        self.spawn()
        self.ready(timeout)

    def spawn(self) -> None:
        """Starts the process without waiting for it (``ready`` waits): processes spawned
        together start on the machine's cores side by side."""
        command = [sys.executable, "-m", "flowrunner", "serve", "--port", str(self.port)]
        command += self.serve_args
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                command, env=self.env, stdout=out, stderr=subprocess.STDOUT
            )
        self._terminated = False

    def ready(self, timeout: float = HANG_GUARD) -> None:
        """Until the spawned server answers its health check."""
        assert self.process is not None
        deadline = time.monotonic() + timeout
        # One client for every poll: each new one loads the CA bundle (~30 ms of CPU), taken
        # ten times a second from the starting processes.
        with httpx.Client(timeout=1) as http:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(f"server exited: {self.log.read_text()[-3000:]}")
                try:
                    if http.get(f"{self.url}/healthz").status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"server did not start: {self.log.read_text()[-3000:]}")

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def kill(self) -> None:
        """``kill -9``: no shutdown, no lease hand-back, nothing flushed."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)
        self.process = None

    def terminate(self) -> None:
        """SIGTERM without waiting (``stop`` waits): processes told together shut down side
        by side. Sent once: a second signal would be a new request to a stopping server."""
        if self.process is not None and self.process.poll() is None and not self._terminated:
            self.process.terminate()
            self._terminated = True

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()
        self.process = None

    def token(self) -> str:
        response = httpx.post(
            f"{self.url}/api/v1/login",
            json={"username": ADMIN[0], "password": ADMIN[1]},
            timeout=10,
        )
        response.raise_for_status()
        token: str = response.json()["token"]
        return token

    def client(self, *, timeout: float = HANG_GUARD) -> httpx.AsyncClient:
        """An HTTP client of the admin (a fresh Bearer token) on this server; ``timeout``
        only guards against a hang."""
        headers = {"Authorization": f"Bearer {self.token()}"}
        return httpx.AsyncClient(base_url=self.url, headers=headers, timeout=timeout)


async def create_flow(client: httpx.AsyncClient, yaml: str) -> str:
    """Stores ``yaml`` as a flow of the client's account; its id."""
    response = await client.post(
        "/api/v1/flows", content=yaml, headers={"content-type": "application/yaml"}
    )
    assert response.status_code == 201, response.text
    flow_id: str = response.json()["id"]
    return flow_id


async def start_run(client: httpx.AsyncClient, flow_id: str, run_input: dict[str, Any]) -> str:
    """Starts a run of ``flow_id`` without waiting for it; its execution id."""
    response = await client.post(f"/api/v1/flows/{flow_id}/run", json={"input": run_input})
    assert response.status_code == 202, response.text
    execution_id: str = response.json()["execution_id"]
    return execution_id


async def run_in_status(
    client: httpx.AsyncClient, execution_id: str, *statuses: str, within: float = HANG_GUARD
) -> dict[str, Any]:
    """The run once its status is one of ``statuses`` (polled: its status lives in the
    server's store; ``within`` only guards a hang)."""
    async with asyncio.timeout(within):
        while True:
            run: dict[str, Any] = (await client.get(f"/api/v1/executions/{execution_id}")).json()
            if run["status"] in statuses:
                return run
            await asyncio.sleep(0.05)


async def finished_run(client: httpx.AsyncClient, execution_id: str) -> dict[str, Any]:
    """The run once it has ended."""
    return await run_in_status(client, execution_id, *ENDED)


async def stored_events(client: httpx.AsyncClient, execution_id: str) -> list[dict[str, Any]]:
    """A finished run's stored events, replayed by its SSE stream (which ends after the last)."""
    response = await client.get(f"/api/v1/executions/{execution_id}/events")
    assert response.status_code == 200, response.text
    return [
        json.loads(line[len("data: ") :])
        for line in response.text.splitlines()
        if line.startswith("data: ")
    ]
