"""The ``agent`` node: a tool-calling loop on the ``llm`` node's provider layer, with tools
from MCP servers (nodes/mcp), JavaScript functions and sub-flows. See docs/nodes/agent.md."""

from flowrunner.nodes.agent.errors import AgentError, AgentStepsExhausted
from flowrunner.nodes.agent.node import AGENT
from flowrunner.nodes.base import DefinedNodeType

# (type, aliases) of this package's built-ins.
AGENT_TYPES: list[tuple[DefinedNodeType, tuple[str, ...]]] = [(AGENT, ())]

__all__ = ["AGENT_TYPES", "AgentError", "AgentStepsExhausted"]
