"""What an MCP call can fail with, each a node failure (``retry`` and ``error`` edges apply).

McpError                  any MCP failure (code ``mcp_error``)
├── McpCommandRefused     a stdio command not on FLOWRUNNER_MCP_STDIO_COMMANDS
├── McpConnectionFailed   the server could not be started or reached, or went away
├── McpTimeout            the operation (connecting included) ran past its timeout
├── McpUnknownTool        ``call_tool`` named a tool the server does not have
├── McpToolFailed         the tool answered with an error result (``isError``)
├── McpRequestFailed      the server refused the request (a JSON-RPC error)
└── McpResultTooLarge     the result is past FLOWRUNNER_MCP_MAX_RESULT_BYTES
"""

from __future__ import annotations

from flowrunner.errors import ExecutionError

__all__ = [
    "McpCommandRefused",
    "McpConnectionFailed",
    "McpError",
    "McpRequestFailed",
    "McpResultTooLarge",
    "McpTimeout",
    "McpToolFailed",
    "McpUnknownTool",
]


class McpError(ExecutionError):
    code = "mcp_error"


class McpCommandRefused(McpError):
    code = "mcp_command_refused"


class McpConnectionFailed(McpError):
    code = "mcp_connection_failed"


class McpTimeout(McpError):
    code = "mcp_timeout"


class McpUnknownTool(McpError):
    code = "mcp_unknown_tool"


class McpToolFailed(McpError):
    code = "mcp_tool_error"


class McpRequestFailed(McpError):
    code = "mcp_request_failed"


class McpResultTooLarge(McpError):
    code = "mcp_result_too_large"
