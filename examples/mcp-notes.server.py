"""The example MCP server for mcp-notes.yaml (HTTP) and mcp-notes-stdio.yaml (stdio).

Built with the official ``mcp`` SDK (``MCPServer``, formerly FastMCP):

    python examples/mcp-notes.server.py --port 8766     # streamable HTTP, path /mcp
    python examples/mcp-notes.server.py --stdio         # stdio (a flow starts it itself)

Over HTTP the first line printed is the server's address (port 0 picks a free one), and the
tools want ``Authorization: Bearer demo-token``. Tools: ``word_count``, ``shout``; resource
``notes://readme``; prompt ``summarize``.
"""

from __future__ import annotations

import argparse
import socket

import anyio
import uvicorn
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError

TOKEN = "demo-token"
server = MCPServer("notes")


def check_token(ctx: Context) -> None:
    headers = ctx.headers
    if headers is not None and headers.get("authorization") != f"Bearer {TOKEN}":
        raise ToolError("unauthorized: send Authorization: Bearer <token>")


@server.tool()
def word_count(text: str, ctx: Context) -> dict[str, int]:
    """Count the words and characters of a text."""
    check_token(ctx)
    return {"words": len(text.split()), "characters": len(text)}


@server.tool()
def shout(text: str, ctx: Context) -> str:
    """The text in capitals."""
    check_token(ctx)
    return text.upper()


@server.resource("notes://readme")
def readme() -> str:
    """What this server is."""
    return "A tiny notes server for Flowrunner's mcp examples."


@server.prompt()
def summarize(text: str) -> str:
    """Ask a model for a one-line summary."""
    return f"Summarize in one line:\n{text}"


def serve_http(port: int) -> None:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(64)
    print(f"http://127.0.0.1:{sock.getsockname()[1]}", flush=True)
    config = uvicorn.Config(server.streamable_http_app(host="127.0.0.1"), log_level="warning")
    anyio.run(lambda: uvicorn.Server(config).serve(sockets=[sock]))


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=8766)
    parser.add_argument("--stdio", action="store_true")
    options = parser.parse_args()
    if options.stdio:
        server.run("stdio")
    else:
        serve_http(options.port)
