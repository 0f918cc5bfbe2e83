"""``mcp``: one operation on an MCP server (list_tools, call_tool, read_resource, get_prompt).

The server is a stdio command (``command``, ``args``, ``env``; only commands the admin
allows) or a streamable-HTTP endpoint (``url``, ``headers``; through the SSRF guard). A run
talks to each server over one session: its first visit connects, later visits reuse it, and
the run's end closes it (a stdio server's process ends with it; run_sessions.py);
``pool: true`` reuses a session per account and server across runs instead (pool.py). The
whole visit, connecting included, is bounded by ``timeout``; cancelling the run closes the
session and ends the child process. A tool's error result fails the node (``retry`` and an
``error`` edge apply) as ``mcp_unknown_tool`` or ``mcp_tool_error``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from flowrunner.config import load_settings
from flowrunner.durations import DURATION_PATTERN
from flowrunner.errors import ExecutionError
from flowrunner.expressions import thaw
from flowrunner.nodes.base import Call, DefinedNode, DefinedNodeType
from flowrunner.nodes.mcp.errors import McpError
from flowrunner.nodes.mcp.operations import OPERATIONS, run_operation
from flowrunner.nodes.mcp.server import McpSettings, ServerSpec, parse_timeout
from flowrunner.nodes.run_resources import RUN_RESOURCES
from flowrunner.nodes.spec import BuildEnv

__all__ = ["MCP", "MCP_TYPES", "PARAMS_SCHEMA"]

_STRINGS = {"type": "object", "additionalProperties": {"type": ["string", "number", "boolean"]}}

PARAMS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "operation": {"enum": list(OPERATIONS), "default": "call_tool"},
        "command": {"type": "string", "minLength": 1, "description": "stdio server command"},
        "args": {"type": "array", "items": {"type": ["string", "number"]}, "maxItems": 100},
        "env": {**_STRINGS, "maxProperties": 100, "description": "the child's extra env"},
        "url": {"type": "string", "minLength": 1, "description": "streamable-HTTP endpoint"},
        "headers": {**_STRINGS, "maxProperties": 50},
        "tool": {"type": "string", "minLength": 1},
        "arguments": {"type": "object", "description": "tool or prompt arguments"},
        "uri": {"type": "string", "minLength": 1, "description": "resource URI"},
        "prompt": {"type": "string", "minLength": 1, "description": "prompt name"},
        "timeout": {
            "type": ["number", "string"],
            "exclusiveMinimum": 0,
            "pattern": DURATION_PATTERN,
            "description": "seconds or a duration (default FLOWRUNNER_MCP_TIMEOUT_SECONDS)",
        },
        "pool": {"type": "boolean", "description": "reuse a session per account and server"},
    },
    "additionalProperties": False,
}

# The param each operation needs besides the server.
_NEEDS = {"call_tool": "tool", "read_resource": "uri", "get_prompt": "prompt"}


class McpNode(DefinedNode):
    __slots__ = ("_settings",)

    actions: ClassVar[frozenset[str] | None] = frozenset()

    def setup(self, env: BuildEnv) -> None:
        try:
            self._settings = McpSettings.from_settings(load_settings())
        except ValueError as exc:
            raise ExecutionError(str(exc)) from exc

    @classmethod
    def check_params(
        cls, params: Mapping[str, Any], base_path: Path | None
    ) -> list[tuple[tuple[str | int, ...], str]]:
        problems: list[tuple[tuple[str | int, ...], str]] = []
        if ("command" in params) == ("url" in params):
            problems.append(
                (("command",), "give either command (a stdio server) or url (an HTTP server)")
            )
        if "command" in params and "headers" in params:
            problems.append((("headers",), "headers are for an HTTP server (url)"))
        if "url" in params and ("args" in params or "env" in params):
            problems.append((("url",), "args and env are for a stdio server (command)"))
        operation = params.get("operation", "call_tool")
        needed = _NEEDS.get(operation) if isinstance(operation, str) else None
        if needed is not None and needed not in params:
            problems.append(((needed,), f"operation {operation} needs param {needed}"))
        return problems

    async def work(self, call: Call) -> Any:
        where = f"node '{self.node_id}'"
        params: dict[str, Any] = thaw(call.params)
        operation = params.get("operation") or "call_tool"
        if operation not in OPERATIONS:
            raise McpError(
                f"{where}: param operation: must be one of {', '.join(OPERATIONS)}, "
                f"got {operation!r}",
                node_id=self.node_id,
            )
        spec = ServerSpec.from_params(params, where)
        timeout = parse_timeout(params.get("timeout"), self._settings.timeout, where)
        try:
            return await run_operation(
                spec,
                self._settings,
                where,
                operation,
                params,
                timeout=timeout,
                pooled=params.get("pool") is True,
                run=call.ctx.scoped(RUN_RESOURCES),
            )
        except McpError as exc:
            exc.context.setdefault("node_id", self.node_id)
            raise


MCP = DefinedNodeType(
    "mcp",
    "Call an MCP server (stdio command on the admin's allow-list, or streamable-HTTP url): "
    "operation list_tools, call_tool (tool, arguments), read_resource (uri) or get_prompt "
    "(prompt, arguments). A tool error result fails the node.",
    McpNode,
    PARAMS_SCHEMA,
)

# (type, aliases) of this package's built-ins.
MCP_TYPES: list[tuple[DefinedNodeType, tuple[str, ...]]] = [(MCP, ())]
