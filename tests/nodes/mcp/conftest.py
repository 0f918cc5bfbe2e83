"""The test MCP server (mcp_test_server.py, built with the SDK) over stdio and over HTTP."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from flowrunner.nodes.mcp import close_pool

SCRIPT = Path(__file__).with_name("mcp_test_server.py")
# The allow-list entry the tests set: this interpreter running this script, any further args.
ALLOWED = shlex.join([sys.executable, str(SCRIPT)])


def stdio_params(extra: str = "") -> str:
    """The YAML flow-mapping inside for the stdio server (``extra`` appended)."""
    params = f'command: "{sys.executable}", args: ["{SCRIPT}"]'
    return f"{params}, {extra}" if extra else params


def process_gone(pid: int) -> bool:
    """Whether process ``pid`` no longer exists (exited and reaped)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return not Path(f"/proc/{pid}").exists()


@contextmanager
def http_server(env: dict[str, str] | None = None) -> Iterator[str]:
    """The test server over streamable HTTP on 127.0.0.1 and a free port; its endpoint URL."""
    process = subprocess.Popen(
        [sys.executable, str(SCRIPT), "--http", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, **(env or {})},
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:"), url
        yield url
    finally:
        process.kill()
        process.wait()
        if process.stdout is not None:
            process.stdout.close()


@pytest.fixture(scope="module")
def mcp_url() -> Iterator[str]:
    with http_server() as url:
        yield url


@pytest.fixture(autouse=True)
def mcp_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """The test server's command allowed, loopback allowed (the HTTP server is local)."""
    monkeypatch.setenv("FLOWRUNNER_MCP_STDIO_COMMANDS", ALLOWED)
    monkeypatch.setenv("FLOWRUNNER_HTTP_ALLOW_PRIVATE", "true")
    monkeypatch.delenv("FLOWRUNNER_HTTP_ALLOW", raising=False)


@pytest.fixture(autouse=True)
async def pooled_sessions_closed() -> AsyncIterator[None]:
    yield
    await close_pool()
