"""A throwaway ``redis-server`` on a free loopback port, for tests that stop or pause it.

The shared Redis (``FLOWRUNNER_TEST_REDIS_URL``) must never be paused; tests of the bus's
failure handling start their own, with no persistence, and always kill it.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.conftest import REQUIRE_SERVICES

REDIS_SERVER = "/usr/bin/redis-server"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RedisServer:
    """One ``redis-server`` process: ``pause`` (SIGSTOP: hung, connections stay open),
    ``resume`` (SIGCONT), ``stop`` (gone: connections refused) and ``start`` again."""

    def __init__(self, durable_in: Path | None = None) -> None:
        self.durable_in = durable_in  # an append-only file there, fsynced on every write
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 10.0) -> None:
        command = [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1"]
        command += ["--save", ""]
        if self.durable_in is None:
            command += ["--appendonly", "no"]
        else:
            command += ["--dir", str(self.durable_in), "--appendonly", "yes"]
            command += ["--appendfsync", "always"]
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.process.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("redis-server did not start")

    def pause(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()  # SIGKILL ends a stopped (paused) process too
            self.process.wait(10)
        self.process = None


@contextmanager
def redis_server(durable_in: Path | None = None) -> Iterator[RedisServer]:
    """A started server, killed at the end whatever happened."""
    if shutil.which(REDIS_SERVER) is None:
        if REQUIRE_SERVICES:
            pytest.fail(f"CI requires every service: {REDIS_SERVER} is not installed")
        pytest.skip(f"{REDIS_SERVER} is not installed")
    server = RedisServer(durable_in)
    server.start()
    try:
        yield server
    finally:
        server.stop()
