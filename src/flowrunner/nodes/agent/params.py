"""The ``agent`` node's params: their JSON Schema, load-time checks of its tools, and the
resolved values of one visit.

The model params are the ``llm`` node's (provider, model, api_key, base_url, messages or
prompt + system, temperature, max_tokens, top_p, stop, timeout, stream) and are read by its
``llm_call``. An agent adds ``max_steps``, ``tools``, ``tool_choice``, ``max_parallel_tools``,
``tool_timeout``, ``max_result_chars``, and ``memory_key``/``memory_tokens`` (memory.py). A
tool is one of:

- ``mcp: {command, args, env | url, headers}`` (+ ``only: [names]``): the server's tools;
- ``name``, ``description``, ``parameters`` (JSON Schema) and ``script``: a JavaScript
  function body run in the sandbox with ``args`` (the model's arguments) in scope;
- ``name``, ``description``, ``parameters`` and ``path`` (a flow file beside this one) or
  ``flow`` (+ ``version``, a flow stored in the account): the sub-flow runs with the
  arguments as its input; its output is the result;
- ``node`` (another node of this flow; + ``params``, ``name``, ``description``): the node
  runs with the model's arguments laid over its configured params; the tool's schema is
  its type's params schema restricted to ``params`` (default: the params it leaves unset).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flowrunner.nodes.llm.params import PARAMS_SCHEMA as LLM_PARAMS_SCHEMA
from flowrunner.nodes.llm.params import LLMCall, LLMParamError, llm_call

__all__ = ["PARAMS_SCHEMA", "AgentParams", "agent_params", "node_tools", "tool_problems"]

DEFAULT_MAX_STEPS = 10
MAX_STEPS = 100
MAX_TOOLS = 64
DEFAULT_PARALLEL = 4
MAX_PARALLEL = 16
DEFAULT_TOOL_TIMEOUT = 120.0
MAX_TOOL_TIMEOUT = 3600.0
DEFAULT_RESULT_CHARS = 20_000
MAX_RESULT_CHARS = 200_000

DEFAULT_MEMORY_TOKENS = 4000
MAX_MEMORY_TOKENS = 200_000

# What every provider accepts as a function name.
TOOL_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
KINDS = ("mcp", "script", "path", "flow", "node")

_MODEL_PARAMS = (
    "provider", "model", "api_key", "base_url", "messages", "prompt", "system",
    "temperature", "max_tokens", "top_p", "stop", "timeout", "stream",
)  # fmt: skip

_TOOL = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "mcp": {"type": "object", "description": "an MCP server: command/args/env or url/headers"},
        "only": {"type": "array", "items": {"type": "string"}, "maxItems": 128},
        "name": {"type": "string", "pattern": TOOL_NAME.pattern},
        "description": {"type": "string"},
        "parameters": {"type": "object", "description": "the arguments' JSON Schema"},
        "script": {"type": "string", "description": "a JavaScript function body; args in scope"},
        "path": {"type": "string", "description": "a flow file, relative to this one"},
        "flow": {"type": "string", "description": "a flow stored in the account (name or id)"},
        "version": {"type": "integer", "minimum": 1},
        "node": {"type": "string", "description": "another node of this flow, by id"},
        "params": {
            "type": "array",
            "items": {"type": "string"},
            "maxItems": 64,
            "uniqueItems": True,
            "description": "the node's params the model fills (default: those it leaves unset)",
        },
    },
}

PARAMS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["model"],
    "anyOf": [{"required": ["messages"]}, {"required": ["prompt"]}],
    "properties": {
        **{k: LLM_PARAMS_SCHEMA["properties"][k] for k in _MODEL_PARAMS},
        "max_steps": {"type": "integer", "minimum": 1, "maximum": MAX_STEPS},
        "tools": {"type": "array", "items": _TOOL, "maxItems": MAX_TOOLS},
        "tool_choice": {"type": ["string", "object"]},
        "max_parallel_tools": {"type": "integer", "minimum": 1, "maximum": MAX_PARALLEL},
        "tool_timeout": {
            "type": "number",
            "exclusiveMinimum": 0,
            "maximum": MAX_TOOL_TIMEOUT,
            "description": "seconds one tool call may take (default 120)",
        },
        "max_result_chars": {"type": "integer", "minimum": 100, "maximum": MAX_RESULT_CHARS},
        "memory_key": {
            "type": "string",
            "minLength": 1,
            "maxLength": 200,
            "description": "keep the conversation across runs under this key",
        },
        "memory_tokens": {"type": "integer", "minimum": 100, "maximum": MAX_MEMORY_TOKENS},
    },
}


def kind_of(tool: Mapping[str, Any]) -> str | None:
    """Which kind a tool entry is (None: not exactly one)."""
    kinds = [k for k in KINDS if k in tool]
    return kinds[0] if len(kinds) == 1 else None


def tool_problems(params: Mapping[str, Any], base_path: Path | None) -> list[tuple[Any, str]]:
    """Load-time problems of the ``tools`` param: (param path, message) each."""
    tools = params.get("tools")
    if not isinstance(tools, list):
        return []
    problems: list[tuple[Any, str]] = []
    names: dict[str, int] = {}
    for index, tool in enumerate(tools):
        if not isinstance(tool, Mapping):
            continue  # the schema says so
        at = ("tools", index)
        kind = kind_of(tool)
        if kind is None:
            problems.append((at, "a tool is one of mcp, script, path, flow or node (exactly one)"))
            continue
        if kind != "node" and "params" in tool:
            problems.append(((*at, "params"), "params is for node tools"))
        if kind == "mcp":
            for key in ("name", "description", "parameters", "version"):
                if key in tool:
                    problems.append(((*at, key), f"{key} is for script and flow tools"))
            continue
        if "only" in tool:
            problems.append(((*at, "only"), "only is for mcp tools"))
        if kind == "node":
            problems.extend(_node_tool_problems(tool, at, names, index))
            continue
        name = tool.get("name")
        if not isinstance(name, str):
            problems.append((at, f"a {kind} tool needs a name (the function the model calls)"))
        elif name in names:
            problems.append(((*at, "name"), f"tool '{name}' is defined twice"))
        else:
            names[name] = index
        if "version" in tool and kind != "flow":
            problems.append(((*at, "version"), "version applies to a stored flow (flow:)"))
        value = tool.get(kind)
        if kind in ("path", "flow") and isinstance(value, str) and "${" in value:
            problems.append(
                ((*at, kind), f"{kind} must be written out, not an expression: sub-flows are "
                 "checked when the flow is loaded or saved")
            )  # fmt: skip
        elif kind == "path" and isinstance(value, str):
            if base_path is None:
                problems.append(
                    ((*at, "path"), "sub-flow paths are relative to the flow's own file, and "
                     "this flow was loaded without one")
                )  # fmt: skip
            elif not (base_path / value).is_file():
                problems.append(((*at, "path"), f"sub-flow file '{value}' not found"))
    return problems


def _node_tool_problems(
    tool: Mapping[str, Any], at: tuple[Any, ...], names: dict[str, int], index: int
) -> list[tuple[Any, str]]:
    problems: list[tuple[Any, str]] = []
    node = tool.get("node")
    for key in ("parameters", "version"):
        if key in tool:
            why = "its params schema is the tool's" if key == "parameters" else "not a flow"
            problems.append(((*at, key), f"{key} is not for node tools ({why})"))
    if not isinstance(node, str):
        return problems  # the schema says so
    if "${" in node:
        problems.append(((*at, "node"), "node must be written out, not an expression"))
        return problems
    name = tool.get("name", node)
    if not isinstance(name, str):
        return problems
    if "name" not in tool and not TOOL_NAME.match(name):
        problems.append(
            ((*at, "node"), f"node id '{node}' is not a function name a model accepts "
             "(letters, digits, _ and -, at most 64): give the tool a name")
        )  # fmt: skip
    elif name in names:
        problems.append(((*at, "node"), f"tool '{name}' is defined twice"))
    else:
        names[name] = index
    return problems


NodeToolRef = tuple[tuple[str | int, ...], str, list[str] | None]


def node_tools(params: Mapping[str, Any]) -> list[NodeToolRef]:
    """The node tools of ``params``: (param path, node id, the params the model fills)."""
    tools = params.get("tools")
    found: list[NodeToolRef] = []
    for index, tool in enumerate(tools if isinstance(tools, list) else ()):
        if not isinstance(tool, Mapping) or kind_of(tool) != "node":
            continue
        node, chosen = tool.get("node"), tool.get("params")
        if isinstance(node, str) and "${" not in node:
            names = [str(p) for p in chosen] if isinstance(chosen, list | tuple) else None
            found.append((("tools", index, "node"), node, names))
    return found


@dataclass(frozen=True, slots=True)
class AgentParams:
    """Resolved params of one visit."""

    model: LLMCall
    max_steps: int
    tool_choice: Any
    max_parallel: int
    tool_timeout: float
    max_result_chars: int
    memory_key: str | None
    memory_tokens: int


def agent_params(node_id: str, params: Mapping[str, Any]) -> AgentParams:
    def bad(name: str, why: str) -> LLMParamError:
        return LLMParamError(f"node '{node_id}': param {name}: {why}", node_id=node_id)

    model = llm_call(node_id, {k: params[k] for k in _MODEL_PARAMS if k in params})
    return AgentParams(
        model=model,
        max_steps=_integer(params, "max_steps", DEFAULT_MAX_STEPS, 1, MAX_STEPS, bad),
        tool_choice=params.get("tool_choice"),
        max_parallel=_integer(params, "max_parallel_tools", DEFAULT_PARALLEL, 1, MAX_PARALLEL, bad),
        tool_timeout=_seconds(params.get("tool_timeout"), bad),
        max_result_chars=_integer(
            params, "max_result_chars", DEFAULT_RESULT_CHARS, 100, MAX_RESULT_CHARS, bad
        ),
        memory_key=_key(params.get("memory_key"), bad),
        memory_tokens=_integer(
            params, "memory_tokens", DEFAULT_MEMORY_TOKENS, 100, MAX_MEMORY_TOKENS, bad
        ),
    )


def _key(value: Any, bad: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > 200:
        raise bad("memory_key", "must be a non-empty string of at most 200 characters")
    return value.strip()


def _integer(
    params: Mapping[str, Any], name: str, default: int, low: int, high: int, bad: Any
) -> int:
    value = params.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise bad(name, f"must be an integer from {low} to {high}")
    return value


def _seconds(value: Any, bad: Any) -> float:
    if value is None:
        return DEFAULT_TOOL_TIMEOUT
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not 0 < value <= MAX_TOOL_TIMEOUT
    ):
        raise bad("tool_timeout", f"must be seconds, more than 0 and at most {MAX_TOOL_TIMEOUT:g}")
    return float(value)
