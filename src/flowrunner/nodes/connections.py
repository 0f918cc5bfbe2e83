"""Closing what nodes keep open between runs: the database nodes' pools and clients, and
the pooled MCP sessions (child processes among them). Called at server or worker shutdown
and at the end of a local run, once no run uses them any more."""

from __future__ import annotations

from flowrunner.nodes.database.connections import close_connections as close_database
from flowrunner.nodes.mcp.pool import close_pool  # light: the mcp SDK loads with a session

__all__ = ["close_connections"]


async def close_connections() -> None:
    """Close the running loop's pools, clients and pooled MCP sessions, and wait for it."""
    try:
        await close_database()
    finally:
        await close_pool()  # their processes end before the loop does
