"""A throwaway DynamoDB-API server on loopback for the tests (beside ``redis_server.py``).

Starts moto's standalone server (``moto_server``, from the ``moto[server]`` dev dependency) as
a child process on a free 127.0.0.1 port and stops it afterwards. It is a real HTTP server
speaking the DynamoDB wire protocol, so the backend is exercised through aiobotocore exactly
as against AWS, with no in-process mock of boto.

moto's server handles requests on several threads but does not make a conditional write
atomic against a concurrent one, which real DynamoDB does. ``serialized=True`` (the default)
therefore serves one request at a time through a lock around moto's own WSGI application,
which gives the per-request atomicity DynamoDB guarantees; concurrency still comes from the
many clients racing each other.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ENDPOINT_ENV = "FLOWRUNNER_TEST_DYNAMODB_ENDPOINT"

_SERIALIZED_SERVER = """
import sys, threading
from werkzeug.serving import run_simple
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication, MotoRequestHandler, create_backend_app,
)
app = DomainDispatcherApplication(create_backend_app)
lock = threading.Lock()
def serialized(environ, start_response):
    with lock:
        return list(app(environ, start_response))
run_simple(sys.argv[1], int(sys.argv[2]), serialized, threaded=True,
           request_handler=MotoRequestHandler)
"""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _command(port: int, serialized: bool) -> list[str]:
    if serialized:
        return [sys.executable, "-c", _SERIALIZED_SERVER, "127.0.0.1", str(port)]
    script = Path(sys.executable).with_name("moto_server")
    moto_server = str(script) if script.exists() else shutil.which("moto_server")
    if moto_server is None:
        return [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    return [moto_server, "-H", "127.0.0.1", "-p", str(port)]


@contextmanager
def moto_server(*, serialized: bool = True, timeout: float = 30.0) -> Iterator[str]:
    """Run a moto server for the duration of the block; yields its endpoint URL."""
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        _command(port, serialized),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "MOTO_PORT": str(port)},
    )
    try:
        _wait_until_up(endpoint, process, timeout)
        yield endpoint
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_until_up(endpoint: str, process: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"moto server exited with code {process.returncode}")
        try:
            with urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1):
                return
        except (urllib.error.URLError, OSError):
            time.sleep(0.05)
    raise RuntimeError(f"moto server did not answer on {endpoint} within {timeout:g}s")


@contextmanager
def endpoint_for_tests() -> Iterator[str]:
    """``FLOWRUNNER_TEST_DYNAMODB_ENDPOINT`` when set (a DynamoDB Local, or AWS itself),
    else a moto server started for the block."""
    configured = os.environ.get(ENDPOINT_ENV)
    if configured:
        yield configured
        return
    with moto_server() as endpoint:
        yield endpoint
