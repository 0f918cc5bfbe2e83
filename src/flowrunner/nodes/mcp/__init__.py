"""The ``mcp`` built-in, and the MCP client layer other nodes (``agent``) build on.

``server`` says which server (``ServerSpec``) and what the admin allows (``McpSettings``),
``session`` connects with the official SDK and runs the operations (``open_session``,
``McpSession``, ``function_definition``), ``pool`` bounds sessions and keeps pooled ones,
``operations`` picks a session for a visit (``session_for``) and runs a node's operation,
``node`` is the node type. See docs/nodes/mcp.md.
"""

from flowrunner.nodes.mcp.errors import (
    McpCommandRefused,
    McpConnectionFailed,
    McpError,
    McpRequestFailed,
    McpResultTooLarge,
    McpTimeout,
    McpToolFailed,
    McpUnknownTool,
)
from flowrunner.nodes.mcp.node import MCP, MCP_TYPES
from flowrunner.nodes.mcp.operations import OPERATIONS, run_operation, session_for
from flowrunner.nodes.mcp.pool import close_pool
from flowrunner.nodes.mcp.server import McpSettings, ServerSpec
from flowrunner.nodes.mcp.session import McpSession, function_definition, open_session

__all__ = [
    "MCP",
    "MCP_TYPES",
    "OPERATIONS",
    "McpCommandRefused",
    "McpConnectionFailed",
    "McpError",
    "McpRequestFailed",
    "McpResultTooLarge",
    "McpSession",
    "McpSettings",
    "McpTimeout",
    "McpToolFailed",
    "McpUnknownTool",
    "ServerSpec",
    "close_pool",
    "function_definition",
    "open_session",
    "run_operation",
    "session_for",
]
