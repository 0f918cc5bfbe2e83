"""An agent's tools: what the model is offered, and what runs when it calls one.

Each tool kind (params.py) becomes ``Tool`` objects with an OpenAI-shaped ``definition`` and
a ``run(arguments)``:

- ``ScriptTool``: a JavaScript function body in the flow's sandbox (``args`` in scope, plus
  what a ``script`` node sees: ``input``, ``shared``, ``results``, ``execution``);
- ``FileFlowTool``: a flow file compiled with this one, run like a ``flow`` node's ``path``
  sub-flow (the same ``shared``; its node events nested under the agent);
- ``StoredFlowTool``: a flow stored in the account, run as a child execution like a ``flow``
  node's ``flow`` (on a server only);
- ``McpTool``: one tool of an MCP server, called over the run's session with the server
  (nodes/mcp ``session_for``), listed afresh at each visit;
- ``NodeTool``: another node of the flow (built afresh, connected to nothing), run as a
  one-node flow with the model's arguments (checked against the tool's schema) laid over its
  configured params; its events nested under the agent, its output the result.

A tool that fails raises; the node feeds the failure back to the model as the tool's
result. MCP tool names a provider refuses (``.``, ``/``, over 64 characters) are offered
under a cleaned name and called by their own.
"""

from __future__ import annotations

import asyncio
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flowrunner.engine import Context, Flow, NodeEvent
from flowrunner.errors import ExecutionError, NodeFailed
from flowrunner.expressions import thaw
from flowrunner.nodes.agent.errors import AgentError
from flowrunner.nodes.base import TOOL_ARGUMENTS, Call, run_script
from flowrunner.nodes.control import NO_SERVER, STORED_FLOWS
from flowrunner.nodes.llm.types import JSONDict
from flowrunner.nodes.mcp import McpSettings, ServerSpec, function_definition, session_for
from flowrunner.nodes.mcp.errors import McpError, McpTimeout
from flowrunner.nodes.run_resources import RUN_RESOURCES

if TYPE_CHECKING:
    from flowrunner.nodes.spec import Sibling
    from flowrunner.scripting.host import ScriptHost

__all__ = ["Tool", "Visit", "mcp_tools", "static_tool"]

_NOT_A_NAME = re.compile(r"[^A-Za-z0-9_-]")


@dataclass(slots=True)
class Visit:
    """What a tool needs of the agent's visit."""

    node_id: str
    ctx: Context
    scope: Mapping[str, Any]  # the node's expression scope (a script tool's names)
    mcp: McpSettings


class Tool(ABC):
    """A function the model may call."""

    __slots__ = ("definition", "name")

    def __init__(self, name: str, description: str, parameters: Mapping[str, Any]) -> None:
        self.name = name
        schema = dict(parameters) if parameters else {"type": "object", "properties": {}}
        self.definition: JSONDict = {
            "type": "function",
            "function": {"name": name, "description": description, "parameters": schema},
        }

    @abstractmethod
    async def run(self, visit: Visit, arguments: dict[str, Any], call_index: int) -> Any:
        """The tool's result (JSON); raises when it fails. ``call_index`` is unique per call
        of the visit (a stored sub-flow's child run is found again by it on resume)."""


class ScriptTool(Tool):
    __slots__ = ("_body", "_host")

    def __init__(self, entry: Mapping[str, Any], host: ScriptHost) -> None:
        super().__init__(*_declared(entry))
        self._body = str(entry["script"])
        self._host = host

    async def run(self, visit: Visit, arguments: dict[str, Any], call_index: int) -> Any:
        scope = {**visit.scope, "args": arguments}
        return await run_script(self._host, self._body, scope, visit.ctx)


class FileFlowTool(Tool):
    __slots__ = ("_flow",)

    def __init__(self, entry: Mapping[str, Any], flow: Flow) -> None:
        super().__init__(*_declared(entry))
        self._flow = flow

    async def run(self, visit: Visit, arguments: dict[str, Any], call_index: int) -> Any:
        ctx = visit.ctx
        prefix = (*ctx.flow_path, visit.node_id)

        def forward(event: NodeEvent) -> None:
            event.flow_path = (*prefix, *event.flow_path)
            ctx.emit(event)

        result = await self._flow.run(
            arguments,
            shared=ctx.shared,
            observer=forward,
            execution=ctx.execution,
            scoped=ctx.scoped_values,
        )
        return result.output


class StoredFlowTool(Tool):
    __slots__ = ("_flow", "_version")

    def __init__(self, entry: Mapping[str, Any]) -> None:
        super().__init__(*_declared(entry))
        self._flow = str(entry["flow"])
        version = entry.get("version")
        self._version = version if isinstance(version, int) else None

    async def run(self, visit: Visit, arguments: dict[str, Any], call_index: int) -> Any:
        stored = visit.ctx.scoped(STORED_FLOWS)
        if stored is None:
            raise ExecutionError(f"tool '{self.name}': {NO_SERVER}")
        # The index makes each call its own child run, found again if the parent resumes.
        call = Call(visit.ctx, {}, arguments, index=call_index)
        output, _action = await stored.run_stored(call, self._flow, self._version, arguments)
        return output


class McpTool(Tool):
    __slots__ = ("_server", "_spec", "_tool")

    def __init__(self, name: str, definition: JSONDict, spec: ServerSpec, tool: str) -> None:
        function = definition["function"]
        super().__init__(name, function.get("description") or "", function.get("parameters"))
        self._spec = spec
        self._tool = tool  # the server's own name for it

    async def run(self, visit: Visit, arguments: dict[str, Any], call_index: int) -> Any:
        where = f"node '{visit.node_id}'"
        run = visit.ctx.scoped(RUN_RESOURCES)
        async with session_for(self._spec, visit.mcp, where, run=run) as session:
            result = await session.call_tool(self._tool, arguments)
        if result.get("is_error"):
            raise ExecutionError(str(result.get("text") or "the tool returned an error"))
        structured = result.get("structured")
        return structured if structured is not None else result.get("text")


class NodeTool(Tool):
    __slots__ = ("_flow", "_node", "_validator")

    def __init__(self, entry: Mapping[str, Any], sibling: Sibling) -> None:
        spec = sibling.spec
        schema = node_schema(sibling, entry.get("params"))
        description = entry.get("description") or spec.description or sibling.type_description
        super().__init__(str(entry.get("name") or spec.id), str(description), schema)
        import jsonschema  # by the first agent with a node tool, not by every server

        self._validator = jsonschema.Draft202012Validator(schema)
        self._node = sibling.node
        # One step: the node alone; its next edges were never connected.
        self._flow = Flow(sibling.node, node_id=spec.id, max_steps=1)

    async def run(self, visit: Visit, arguments: dict[str, Any], call_index: int) -> Any:
        from jsonschema.exceptions import best_match

        first = best_match(self._validator.iter_errors(arguments))
        if first is not None:
            where = "/".join(str(p) for p in first.path)
            raise AgentError(f"invalid arguments{f' at {where}' if where else ''}: {first.message}")
        ctx = visit.ctx
        prefix = (*ctx.flow_path, visit.node_id)

        def forward(event: NodeEvent) -> None:
            event.flow_path = (*prefix, *event.flow_path)
            ctx.emit(event)

        try:
            result = await self._flow.run(
                arguments,  # the node's ${input}: the model's arguments
                shared=ctx.shared,
                # The run's results so far (a copy: the tool's own never land in the run's).
                results=dict(ctx.results),
                observer=forward,
                execution=ctx.execution,
                size_check=ctx.size_check,
                scoped={**ctx.scoped_values, TOOL_ARGUMENTS: (self._node, arguments)},
            )
        except NodeFailed as exc:  # the node's own error, as it would read in the run
            raise exc.cause from exc
        return result.output


def node_schema(sibling: Sibling, chosen: Any) -> JSONDict:
    """The tool's arguments' schema: the node type's params schema restricted to ``chosen``
    (default: the params the node leaves unset, code params never); a param the node sets
    is optional, one its type requires and the node leaves unset is required."""
    schema = sibling.params_schema
    properties = schema.get("properties")
    known: Mapping[str, Any] = properties if isinstance(properties, Mapping) else {}
    configured = sibling.spec.params
    if isinstance(chosen, list | tuple):  # frozen in the spec: a tuple
        names = [str(n) for n in chosen]
    else:
        names = [n for n in known if n not in configured]
    where = f"tool node '{sibling.spec.id}'"
    for name in names:
        if name in sibling.code_params:
            raise AgentError(f"{where}: param '{name}' is code: a model cannot fill it")
        if known and name not in known:
            raise AgentError(f"{where}: its type has no param '{name}'")
    names = [n for n in names if n not in sibling.code_params]
    required = schema.get("required")
    needed = [
        n
        for n in (required if isinstance(required, list) else ())
        if n in names and n not in configured
    ]
    restricted: JSONDict = {
        "type": "object",
        "properties": {n: thaw(known.get(n, {})) for n in names},
        "additionalProperties": False,
    }
    if needed:
        restricted["required"] = needed
    return restricted


def static_tool(entry: Mapping[str, Any], host: ScriptHost | None, flow: Flow | None) -> Tool:
    """The tool a script, path or flow entry declares (resolved params)."""
    if "script" in entry:
        if host is None:
            raise ExecutionError("script tools need the JavaScript sandbox")
        return ScriptTool(entry, host)
    if "path" in entry:
        assert flow is not None  # loaded at setup for every path entry
        return FileFlowTool(entry, flow)
    return StoredFlowTool(entry)


async def mcp_tools(visit: Visit, entry: Mapping[str, Any], index: int) -> list[Tool]:
    """The tools of the MCP server ``entry`` names (only those in ``only``, if given)."""
    where = f"node '{visit.node_id}' (tools[{index}])"
    server = entry.get("mcp")
    if not isinstance(server, Mapping):
        raise AgentError(f"{where}: mcp must be a server: command/args/env or url/headers")
    spec = ServerSpec.from_params(thaw(server), where)
    run = visit.ctx.scoped(RUN_RESOURCES)
    try:
        async with asyncio.timeout(visit.mcp.timeout):
            async with session_for(spec, visit.mcp, where, run=run) as session:
                listed = await session.list_tools()
    except TimeoutError as exc:
        raise McpTimeout(
            f"{where}: listing the tools of {spec.describe()} took over {visit.mcp.timeout:g} s"
        ) from exc
    only = entry.get("only")
    wanted = {str(n) for n in only} if isinstance(only, list) else None
    tools: list[Tool] = []
    for tool in listed:
        if wanted is not None and tool.name not in wanted:
            continue
        name = _NOT_A_NAME.sub("_", tool.name)[:64] or "tool"
        tools.append(McpTool(name, function_definition(tool), spec, tool.name))
    if wanted is not None:
        missing = sorted(wanted - {t.name for t in listed})
        if missing:
            raise McpError(
                f"{where}: the MCP server {spec.describe()} has no tool "
                f"{', '.join(repr(m) for m in missing)} (param only)"
            )
    return tools


def _declared(entry: Mapping[str, Any]) -> tuple[str, str, Mapping[str, Any]]:
    parameters = entry.get("parameters")
    return (
        str(entry["name"]),
        str(entry.get("description") or ""),
        parameters if isinstance(parameters, Mapping) else {},
    )
