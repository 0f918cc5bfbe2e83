"""A session for a visit (the run's, pooled or per visit), and the node's four operations.

``session_for`` is the one place that decides how a session is had: a pooled one (pool.py),
the run's (run_sessions.py), or a new one holding a fair session slot; the ``agent`` node
uses it too. ``run_operation``
bounds a whole operation, connecting included, by its timeout.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from flowrunner.nodes.mcp.errors import McpError, McpTimeout
from flowrunner.nodes.mcp.pool import pooled_session, session_slot
from flowrunner.nodes.mcp.run_sessions import RunSessions
from flowrunner.nodes.mcp.server import McpSettings, ServerSpec
from flowrunner.nodes.mcp.session import McpSession, function_definition, open_session
from flowrunner.nodes.run_resources import RunResources

__all__ = ["OPERATIONS", "run_operation", "session_for"]

OPERATIONS = ("list_tools", "call_tool", "read_resource", "get_prompt")


@asynccontextmanager
async def session_for(
    spec: ServerSpec,
    settings: McpSettings,
    where: str,
    *,
    pooled: bool = False,
    run: RunResources | None = None,
) -> AsyncIterator[McpSession]:
    """A session with ``spec``'s server for the body: the account's pooled one; else the
    run's (``run``: its resources, ``ctx.scoped(RUN_RESOURCES)``), reused by the run's later
    visits and closed at its end; else (no run: a bare engine) a new one closed (its process
    ended) when the body ends, however it ends."""
    if pooled:
        async with pooled_session(spec, settings, where) as session:
            yield session
        return
    if run is not None:
        sessions = run.get(RunSessions, RunSessions)
        async with sessions.session(spec, settings, where) as session:
            yield session
        return
    async with session_slot(settings.max_sessions), open_session(spec, settings, where) as s:
        yield s


async def run_operation(
    spec: ServerSpec,
    settings: McpSettings,
    where: str,
    operation: str,
    params: Mapping[str, Any],
    *,
    timeout: float,  # noqa: ASYNC109  # the node's param, applied with asyncio.timeout
    pooled: bool = False,
    run: RunResources | None = None,
) -> dict[str, Any]:
    """The output of ``operation`` with ``params``; McpTimeout past ``timeout`` seconds."""
    try:
        async with asyncio.timeout(timeout):
            async with session_for(spec, settings, where, pooled=pooled, run=run) as session:
                return await _operate(session, operation, params)
    except TimeoutError as exc:
        raise McpTimeout(
            f"{where}: {operation} on the MCP server {spec.describe()} did not finish within "
            f"{timeout:g} s (param timeout, default FLOWRUNNER_MCP_TIMEOUT_SECONDS)"
        ) from exc


async def _operate(
    session: McpSession, operation: str, params: Mapping[str, Any]
) -> dict[str, Any]:
    where = session.where
    if operation == "list_tools":
        tools = await session.list_tools()
        return {
            "tools": [function_definition(tool) for tool in tools],
            "server_tools": [
                tool.model_dump(mode="json", by_alias=True, exclude_none=True) for tool in tools
            ],
        }
    arguments = params.get("arguments") or {}
    if not isinstance(arguments, Mapping):
        raise McpError(f"{where}: param arguments: must be a mapping, got {arguments!r}"[:300])
    if operation == "call_tool":
        name = _text(params, "tool", where)
        result = await session.call_tool(name, arguments)
        await session.raise_for_tool(name, result)
        return {"tool": name, **result}
    if operation == "read_resource":
        return await session.read_resource(_text(params, "uri", where))
    return await session.get_prompt(_text(params, "prompt", where), arguments)


def _text(params: Mapping[str, Any], name: str, where: str) -> str:
    value = params.get(name)
    if not isinstance(value, str) or not value.strip():
        raise McpError(f"{where}: param {name}: must be a non-empty string")
    return value.strip()
