"""The ``agent`` node: a model that calls tools until it answers.

Each step is one model call (the ``llm`` node's provider layer: same providers, keys only
from ``${secrets.X}``, the same errors, streaming, usage metering). When the reply asks for
tools, the calls run concurrently (at most ``max_parallel_tools`` at once, each bounded by
``tool_timeout``), their results are appended to the conversation as ``tool`` messages and
the model is called again; a failing tool, an unknown tool name or arguments that are not a
JSON object are told to the model as that call's result, never a run failure. A reply
without tool calls ends the visit. More than ``max_steps`` model calls fail the node with
``agent_max_steps`` (the conversation so far in the error).

Every step is a ``log`` event of the run (``fields.event``: ``agent.model_call``,
``agent.tool_call``, ``agent.tool_result``, ``agent.tool_error``), so the live view shows the
agent at work; a streamed reply's text goes out as live ``stream`` events as for ``llm``.

With ``memory_key`` the conversation is kept across runs in the account's key-value store
(memory.py).

Output: ``response`` (the final text), ``steps`` (model calls made), ``intermediate_results``
(one entry per tool call: step, tool, arguments, result or error), ``conversation`` (every
message, the final reply included), ``usage`` (summed over the steps), ``model``,
``finish_reason``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from flowrunner.config import load_settings
from flowrunner.engine import Flow
from flowrunner.errors import ExecutionError, SandboxError
from flowrunner.expressions import Resolver, compile_value
from flowrunner.nodes.agent.errors import AgentError, AgentStepsExhausted
from flowrunner.nodes.agent.memory import recall, remember
from flowrunner.nodes.agent.params import (
    PARAMS_SCHEMA,
    AgentParams,
    agent_params,
    node_tools,
    tool_problems,
)
from flowrunner.nodes.agent.tools import NodeTool, Tool, Visit, mcp_tools, static_tool
from flowrunner.nodes.base import SECRETS, Call, DefinedNode, DefinedNodeType
from flowrunner.nodes.live import LIVE_SINK, TextStream
from flowrunner.nodes.llm.errors import LLMError
from flowrunner.nodes.llm.providers import make_provider
from flowrunner.nodes.llm.types import JSONDict, Provider, Usage
from flowrunner.nodes.llm.usage import USAGE_METER, metered_chat
from flowrunner.nodes.mcp import McpSettings
from flowrunner.nodes.script import SANDBOX_HINT
from flowrunner.nodes.store import NO_STORE, RUN_KV
from flowrunner.outbound import AddressPolicy, request_slot

if TYPE_CHECKING:
    from flowrunner.nodes.spec import BuildEnv
    from flowrunner.scripting.host import ScriptHost

__all__ = ["AGENT", "AgentNode"]

PREVIEW_CHARS = 500  # of a tool's arguments or result, in its event
CONVERSATION_IN_ERROR = 50  # messages of the conversation a max_steps failure carries


class AgentNode(DefinedNode):
    __slots__ = ("_flows", "_host", "_max_connections", "_mcp", "_nodes", "_policy", "_tools")

    # The tools are compiled here, their scripts left verbatim (see setup).
    code_params: ClassVar[frozenset[str]] = frozenset({"tools"})
    actions: ClassVar[frozenset[str] | None] = frozenset()

    def setup(self, env: BuildEnv) -> None:
        settings = load_settings()
        try:
            self._policy = AddressPolicy.from_settings(
                settings.http_allow_private, settings.http_allow
            )
            self._mcp = McpSettings.from_settings(settings)
        except ValueError as exc:
            raise ExecutionError(str(exc)) from exc
        self._max_connections = settings.http_max_connections
        self._host: ScriptHost | None = env.scripts
        raw = self.spec.params.get("tools") or ()
        label = f"node '{self.node_id}'"
        # Expressions in a tool (an MCP server's headers: ${secrets.X}) resolve per visit;
        # a script tool's body is code and stays as written.
        self._tools: list[Resolver] = [
            compile_value(tool, label, skip=frozenset({"script"}), path=f"tools[{index}]")
            for index, tool in enumerate(raw)
        ]
        self._flows: dict[int, Flow] = {}
        self._nodes: dict[int, NodeTool] = {}
        for index, tool in enumerate(raw):
            if "node" in tool:
                self._nodes[index] = self._node_tool(env, tool)
            if "path" in tool:
                if env.load_subflow is None:
                    raise ExecutionError("path tools need a sub-flow loader (compile_flow)")
                self._flows[index] = env.load_subflow(str(tool["path"]))
            if "script" in tool and env.scripts is None:
                raise SandboxError(
                    f"{label}: script tools need the JavaScript sandbox: {SANDBOX_HINT}"
                )

    def _node_tool(self, env: BuildEnv, tool: Mapping[str, Any]) -> NodeTool:
        if env.sibling is None:
            raise ExecutionError("node tools need the flow's other nodes (compile_flow)")
        sibling = env.sibling(str(tool["node"]))
        made = NodeTool(tool, sibling)
        fills = made.definition["function"]["parameters"]["properties"]
        if fills and not isinstance(sibling.node, DefinedNode):
            raise ExecutionError(
                f"tool node '{sibling.spec.id}' is of a plugin type whose params cannot be "
                "filled by a model: give the tool params: []"
            )
        return made

    @classmethod
    def check_params(
        cls, params: Mapping[str, Any], base_path: Path | None
    ) -> list[tuple[tuple[str | int, ...], str]]:
        return tool_problems(params, base_path)

    @classmethod
    def tool_nodes(
        cls, params: Mapping[str, Any]
    ) -> list[tuple[tuple[str | int, ...], str, list[str] | None]]:
        return node_tools(params)

    @classmethod
    def nested_scripts(cls, params: Mapping[str, Any]) -> list[tuple[tuple[str | int, ...], str]]:
        return [
            (("tools", i, "script"), tool["script"])
            for i, tool in enumerate(_entries(params))
            if isinstance(tool.get("script"), str)
        ]

    @classmethod
    def subflow_paths(cls, params: Mapping[str, Any]) -> list[tuple[tuple[str, ...], str]]:
        return [
            (("tools", str(i), "path"), tool["path"])
            for i, tool in enumerate(_entries(params))
            if isinstance(tool.get("path"), str) and "${" not in tool["path"]
        ]

    @classmethod
    def subflow_refs(
        cls, params: Mapping[str, Any]
    ) -> list[tuple[tuple[str, ...], str, int | None]]:
        refs: list[tuple[tuple[str, ...], str, int | None]] = []
        for i, tool in enumerate(_entries(params)):
            flow, version = tool.get("flow"), tool.get("version")
            if isinstance(flow, str) and flow and "${" not in flow:
                refs.append(
                    (("tools", str(i), "flow"), flow, version if isinstance(version, int) else None)
                )
        return refs

    async def work(self, call: Call) -> Any:
        spec = agent_params(self.node_id, call.params)
        scope = {**self.scope(call.ctx), "params": call.params}
        if call.index is not None:
            scope |= {"item": call.item, "index": call.index}
        visit = Visit(self.node_id, call.ctx, scope, self._mcp)
        tools = await self._toolbox(visit, scope)
        from flowrunner.outbound.sdk_client import shared_sdk_client  # httpx2 (llm/errors.py)

        client = await shared_sdk_client(self._policy)
        model = spec.model
        provider = make_provider(model.provider, model.api_key, model.base_url, client)
        try:
            return await self._loop(visit, provider, spec, tools)
        except LLMError as exc:
            exc.message = f"node '{self.node_id}': {exc.message}"
            exc.args = (exc.message,)
            exc.context.setdefault("node_id", self.node_id)
            raise

    async def _toolbox(self, visit: Visit, scope: Mapping[str, Any]) -> dict[str, Tool]:
        tools: dict[str, Tool] = {}
        for index, resolver in enumerate(self._tools):
            entry = await self._resolve(resolver, scope)
            if not isinstance(entry, Mapping):
                raise AgentError(f"node '{self.node_id}': tools[{index}] must be a mapping")
            if index in self._nodes:
                found: list[Tool] = [self._nodes[index]]
            elif "mcp" in entry:
                found = await mcp_tools(visit, entry, index)
            else:
                found = [static_tool(entry, self._host, self._flows.get(index))]
            for tool in found:
                if tool.name in tools:
                    raise AgentError(
                        f"node '{self.node_id}': two tools are named '{tool.name}' "
                        f"(tools[{index}] and an earlier one); use only: to pick",
                        node_id=self.node_id,
                    )
                tools[tool.name] = tool
        return tools

    async def _loop(
        self, visit: Visit, provider: Provider, spec: AgentParams, tools: dict[str, Tool]
    ) -> JSONDict:
        ctx = visit.ctx
        meter = ctx.scoped(USAGE_METER)
        stream = TextStream(self.node_id, ctx.scoped(LIVE_SINK)) if spec.model.stream else None
        definitions = [tool.definition for tool in tools.values()] or None
        messages: list[JSONDict] = [dict(m) for m in spec.model.request.messages]
        kv = ctx.scoped(RUN_KV) if spec.memory_key is not None else None
        if spec.memory_key is not None:
            if kv is None:
                raise AgentError(f"node '{self.node_id}': param memory_key: {NO_STORE}")
            system = [m for m in messages if m.get("role") in ("system", "developer")]
            rest = [m for m in messages if m.get("role") not in ("system", "developer")]
            messages = [*system, *await recall(kv, spec.memory_key), *rest]
        usage = Usage()
        results: list[JSONDict] = []
        model = spec.model.request.model
        for step in range(1, spec.max_steps + 1):
            request = dataclasses.replace(
                spec.model.request,
                messages=messages,
                tools=definitions,
                tool_choice=spec.tool_choice if definitions else None,
            )
            async with request_slot(self._max_connections):  # fair between accounts
                reply = await metered_chat(meter, self.node_id, provider, request, stream)
            if stream is not None:
                stream.flush()
            usage += reply.usage
            model = reply.model or model
            messages.append(reply.assistant_message())
            asked = [c["function"]["name"] for c in reply.tool_calls]
            ctx.log(
                f"step {step}: the model "
                + (f"called {', '.join(asked)}" if asked else "answered"),
                event="agent.model_call",
                step=step,
                finish_reason=reply.finish_reason,
                tool_calls=asked,
                usage=reply.usage.as_dict(),
            )
            if not reply.tool_calls:
                if kv is not None and spec.memory_key is not None:
                    secrets = ctx.scoped(SECRETS)
                    await remember(kv, spec.memory_key, messages, spec.memory_tokens, secrets)
                return {
                    "response": reply.content or "",
                    "steps": step,
                    "intermediate_results": results,
                    "conversation": messages,
                    "usage": usage.as_dict(),
                    "model": model,
                    "finish_reason": reply.finish_reason,
                }
            outcomes = await self._call_tools(visit, tools, reply.tool_calls, step, spec)
            for tool_call, (content, record) in zip(reply.tool_calls, outcomes, strict=True):
                messages.append(
                    {
                        "role": "tool",
                        "tool_call_id": tool_call["id"],
                        "name": tool_call["function"]["name"],
                        "content": content,
                    }
                )
                results.append(record)
        raise AgentStepsExhausted(
            f"node '{self.node_id}': the model still asked for tools after max_steps "
            f"({spec.max_steps}) calls; raise max_steps or narrow the task",
            node_id=self.node_id,
            steps=spec.max_steps,
            usage=usage.as_dict(),
            conversation=messages[-CONVERSATION_IN_ERROR:],
        )

    async def _call_tools(
        self,
        visit: Visit,
        tools: dict[str, Tool],
        calls: list[JSONDict],
        step: int,
        spec: AgentParams,
    ) -> list[tuple[str, JSONDict]]:
        """Every call of one reply, concurrently (bounded): (content for the model, record)."""
        slots = asyncio.Semaphore(spec.max_parallel)

        async def one(position: int, tool_call: JSONDict) -> tuple[str, JSONDict]:
            async with slots:
                return await self._call_tool(visit, tools, tool_call, step, position, spec)

        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(one(i, c)) for i, c in enumerate(calls)]
        return [task.result() for task in tasks]

    async def _call_tool(
        self,
        visit: Visit,
        tools: dict[str, Tool],
        tool_call: JSONDict,
        step: int,
        position: int,
        spec: AgentParams,
    ) -> tuple[str, JSONDict]:
        ctx = visit.ctx
        name = str(tool_call["function"]["name"])
        text = tool_call["function"].get("arguments") or "{}"
        record: JSONDict = {"step": step, "tool": name, "tool_call_id": tool_call["id"]}
        try:
            arguments = json.loads(text)
        except ValueError:
            arguments = None
        record["arguments"] = arguments if arguments is not None else text
        ctx.log(
            f"step {step}: calling {name}",
            event="agent.tool_call",
            step=step,
            tool=name,
            arguments=_preview(text),
        )
        tool = tools.get(name)
        try:
            if tool is None:
                known = ", ".join(tools) or "none"
                raise AgentError(f"there is no tool named '{name}' (tools: {known})")
            if not isinstance(arguments, dict):
                raise AgentError(f"the arguments must be a JSON object, got: {_preview(text)}")
            async with asyncio.timeout(spec.tool_timeout):
                # Unique per call of this visit: step, then position in the reply.
                value = await tool.run(visit, arguments, step * 1000 + position)
        except Exception as exc:  # told to the model and recorded on the run, not raised
            message = (
                f"the tool took over {spec.tool_timeout:g} s (tool_timeout)"
                if isinstance(exc, TimeoutError)
                else str(exc) or type(exc).__name__
            )
            ctx.log(
                f"step {step}: {name} failed: {message}",
                level="warning",
                event="agent.tool_error",
                step=step,
                tool=name,
                error=message,
            )
            record["error"] = message
            return f"Error: {message}", record
        content = _content(value, spec.max_result_chars)
        ctx.log(
            f"step {step}: {name} returned",
            event="agent.tool_result",
            step=step,
            tool=name,
            result=_preview(content),
        )
        record["result"] = value
        return content, record


def _content(value: Any, limit: int) -> str:
    """A tool's result as the text the model reads (JSON unless it is text), bounded."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    if len(text) > limit:
        return f"{text[:limit]}… (cut at {limit} of {len(text)} characters)"
    return text


def _preview(text: str) -> str:
    return text if len(text) <= PREVIEW_CHARS else f"{text[:PREVIEW_CHARS]}…"


def _entries(params: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    tools = params.get("tools")
    if not isinstance(tools, list):
        return []
    return [t if isinstance(t, Mapping) else {} for t in tools]


AGENT = DefinedNodeType(
    "agent",
    "A model that calls tools until it answers (provider, model and keys as llm; tools: MCP "
    "servers, JavaScript functions, sub-flows, other nodes of the flow; max_steps). Output: "
    "response, steps, intermediate_results, conversation, usage.",
    AgentNode,
    PARAMS_SCHEMA,
)
