"""``router``: route on the tool a model asked for (the original fork's tool-calling helper).

The node looks for tool calls in its input where the usual producers put them: ``tool_calls``
(an ``llm`` node's output), ``choices[0].message.tool_calls`` (a raw Chat Completions reply),
``llm_result.tool_calls``/``result.tool_calls``/``message.tool_calls``, a list of tool calls,
or one tool call; ``tool_calls`` in params overrides the search (an expression). The action is
the tool's name, so ``next`` maps tool names to the nodes that implement them; with no tool
call the action is ``no_tool_action`` (``no_tool`` by default; without such an edge the node
follows ``default``). Nothing is hard-wired: tools are whatever the flow routes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, ClassVar

from flowrunner.errors import ExecutionError
from flowrunner.nodes.base import Call, DefinedNode, DefinedNodeType

NO_TOOL = "no_tool"
_NESTED = ("llm_result", "result", "message", "output", "response")


class RouterNode(DefinedNode):
    __slots__ = ()

    actions: ClassVar[frozenset[str] | None] = None  # tool names: known when the model answers

    async def work(self, call: Call) -> Any:
        params = call.params
        source = params.get("tool_calls", call.input)
        calls = find_tool_calls(source)
        index = params.get("index", 0)
        if not isinstance(index, int) or isinstance(index, bool) or index < 0:
            raise ExecutionError(
                f"node '{self.node_id}': param index must be a non-negative integer",
                node_id=self.node_id,
            )
        if index >= len(calls):
            call.action = str(params.get("no_tool_action") or NO_TOOL)
            return {
                "tool_name": None,
                "tool_call": None,
                "tool_params": None,
                "tool_call_id": None,
                "original_input": call.input,
            }
        tool_call = calls[index]
        found = tool_call.get("function")
        function: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
        name = function.get("name") or tool_call.get("name")
        if not isinstance(name, str) or not name:
            raise ExecutionError(
                f"node '{self.node_id}': the tool call has no function name", node_id=self.node_id
            )
        call.action = name
        return {
            "tool_name": name,
            "tool_call": dict(tool_call),
            "tool_params": self._arguments(
                name, function.get("arguments", tool_call.get("arguments"))
            ),
            "tool_call_id": tool_call.get("id"),
            "original_input": call.input,
        }

    def _arguments(self, name: str, arguments: Any) -> Any:
        if arguments is None or arguments == "":
            return {}
        if not isinstance(arguments, str):
            return arguments
        try:
            return json.loads(arguments)
        except ValueError as exc:
            raise ExecutionError(
                f"node '{self.node_id}': the arguments of tool call '{name}' are not JSON: {exc}",
                node_id=self.node_id,
            ) from exc


def find_tool_calls(value: Any, depth: int = 0) -> list[Mapping[str, Any]]:
    """The tool calls in ``value`` (see the module docstring), in order; [] when none."""
    if depth > 3 or value is None:
        return []
    if isinstance(value, list):
        if value and all(_is_call(v) for v in value):
            return list(value)
        return []
    if not isinstance(value, Mapping):
        return []
    if _is_call(value):
        return [value]
    calls = value.get("tool_calls")
    if isinstance(calls, list):
        return [c for c in calls if _is_call(c)]
    choices = value.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], Mapping):
        found = find_tool_calls(choices[0].get("message"), depth + 1)
        if found:
            return found
    for key in _NESTED:
        found = find_tool_calls(value.get(key), depth + 1)
        if found:
            return found
    return []


def _is_call(value: Any) -> bool:
    return isinstance(value, Mapping) and (
        isinstance(value.get("function"), Mapping)
        or (value.get("type") == "function" and "name" in value)
    )


ROUTER = DefinedNodeType(
    "router",
    "Route on a model's tool call: the action is the tool's name (no_tool when there is "
    "none). Output: tool_name, tool_call, tool_params, tool_call_id, original_input.",
    RouterNode,
    {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "tool_calls": {"description": "where the tool calls are (default: the input)"},
            "index": {"type": "integer", "minimum": 0, "description": "which call (default 0)"},
            "no_tool_action": {"type": "string", "minLength": 1},
        },
    },
)
