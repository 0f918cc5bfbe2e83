"""An MCP server for the tests, built with the official ``mcp`` SDK (``MCPServer``, once FastMCP).

    python tests/nodes/mcp/mcp_test_server.py                  # stdio
    python tests/nodes/mcp/mcp_test_server.py --http --port 0  # HTTP on 127.0.0.1, /mcp

Over HTTP the first line printed is the endpoint's URL (port 0 picks a free one: the socket
is bound and listening before the line is printed, so a client may connect at once).

Tools: ``add``, ``echo``, ``fail`` (an ``isError`` result), ``crash`` (the process exits
mid-call), ``sleep``, ``big`` (a result of ``n`` characters), ``pid`` (the server's process
id), ``env`` (one environment variable, or null), ``header`` (one request header, over HTTP).
Resource ``memo://greeting``; prompt ``review``.

With ``MCP_MARK_DIR`` in its environment the server writes its process id to ``pid`` there
when it starts, and creates ``sleeping`` when a ``sleep`` call begins: tests watch those.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys

import anyio
import uvicorn
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError

server = MCPServer("flowrunner-test")
MARKS = os.environ.get("MCP_MARK_DIR")


def mark(name: str, text: str = "") -> None:
    if MARKS:
        with open(os.path.join(MARKS, name), "w") as out:
            out.write(text)


@server.tool()
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@server.tool()
def echo(text: str) -> str:
    """Return the text unchanged."""
    return text


@server.tool()
def fail(message: str) -> str:
    """Always fails with the message (a tool error result)."""
    raise ToolError(message)


@server.tool()
def crash() -> str:
    """The server process exits while answering."""
    os._exit(3)


@server.tool()
async def sleep(seconds: float) -> str:
    """Wait, then answer."""
    mark("sleeping")
    await anyio.sleep(seconds)
    return "slept"


@server.tool()
def big(n: int) -> str:
    """A text of n characters."""
    return "x" * n


@server.tool()
def pid() -> int:
    """The server's process id."""
    return os.getpid()


@server.tool()
def env(name: str) -> str | None:
    """One variable of the server's environment, or null."""
    return os.environ.get(name)


@server.tool()
def header(name: str, ctx: Context) -> str | None:
    """One header of the HTTP request that carried the call, or null."""
    headers = ctx.headers or {}
    return headers.get(name.lower())


@server.resource("memo://greeting")
def greeting() -> str:
    """A fixed text."""
    return "hello from the memo"


@server.prompt()
def review(code: str) -> str:
    """Ask for a review of some code."""
    return f"Please review this code:\n{code}"


def serve_http(port: int) -> None:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(64)
    print(f"http://127.0.0.1:{sock.getsockname()[1]}/mcp", flush=True)
    app = server.streamable_http_app(host="127.0.0.1")
    config = uvicorn.Config(app, log_level="warning")
    anyio.run(lambda: uvicorn.Server(config).serve(sockets=[sock]))


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--http", action="store_true")
    parser.add_argument("--port", type=int, default=0)
    options = parser.parse_args()
    mark("pid", str(os.getpid()))
    if options.http:
        serve_http(options.port)
    else:
        server.run("stdio")
    sys.exit(0)
