"""Closing what the database nodes keep open between runs: postgres pools, DynamoDB clients."""

from __future__ import annotations

from flowrunner.nodes.database.dynamo_clients import close_clients
from flowrunner.nodes.database.pg_pools import close_pools


async def close_connections() -> None:
    """Close the running loop's pools and clients (server shutdown, end of a local run)."""
    await close_pools()
    await close_clients()
