"""What can end an agent's run as a failure (a tool's failure never does: the model is told).

    ExecutionError
    └── AgentError             agent_error: the tools cannot be set up (two tools with one
        │                      name, a server's tool list cannot be had)
        └── AgentStepsExhausted  agent_max_steps: the model still asked for tools after
                                 ``max_steps`` calls; the error carries the conversation so far
                                 (a run's stored error: ``details.conversation``)

Model-call failures are the ``llm`` node's (``LLMError`` family), MCP connection failures
while listing tools the ``mcp`` node's (``McpError`` family).
"""

from __future__ import annotations

from flowrunner.errors import ExecutionError


class AgentError(ExecutionError):
    code = "agent_error"


class AgentStepsExhausted(AgentError):
    code = "agent_max_steps"
    # Shown with the run's error (``error.details``): what the model did before giving up.
    public_context = ("steps", "usage", "conversation")
