"""Closing what nodes keep open between runs: the database nodes' pools and clients, and
the pooled MCP sessions (child processes among them). Called at server or worker shutdown
and at the end of a local run, once no run uses them any more."""

from __future__ import annotations

import sys

from flowrunner.nodes.database.connections import close_connections as close_database

__all__ = ["close_connections"]

_MCP_POOL = "flowrunner.nodes.mcp.pool"


async def close_connections() -> None:
    """Close the running loop's pools, clients and pooled MCP sessions, and wait for it."""
    try:
        await close_database()
    finally:
        # Only a process that ran an mcp node has a pool: the others need not import the
        # MCP SDK (slow) to close nothing.
        pool = sys.modules.get(_MCP_POOL)
        if pool is not None:
            await pool.close_pool()  # their processes end before the loop does
