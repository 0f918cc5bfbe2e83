"""``format``: a tool's result as the ``{role: "tool", tool_call_id, name, content}`` message.

``content`` defaults to the input (the tool node's output; an ``http.request`` output gives
its ``body``), serialised as JSON unless it is text. ``tool_call_id`` and ``name`` default to
the latest ``router`` output of the run, so ``llm → router → tool → format`` needs no params.
With ``script`` (JavaScript, run in the sandbox with the usual scope plus ``tool_call``), its
return value is the message (a mapping) or the content (anything else).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from flowrunner.errors import ExecutionError, SandboxError
from flowrunner.nodes.base import Call, DefinedNode, DefinedNodeType, run_script
from flowrunner.nodes.script import SANDBOX_HINT
from flowrunner.nodes.spec import BuildEnv

if TYPE_CHECKING:
    from flowrunner.scripting.host import ScriptHost

MAX_CONTENT_CHARS = 1_000_000


class FormatNode(DefinedNode):
    __slots__ = ("_host",)
    replayable = True

    code_params = frozenset({"script"})
    actions: ClassVar[frozenset[str] | None] = frozenset()

    def setup(self, env: BuildEnv) -> None:
        self._host: ScriptHost | None = None
        if "script" in self.spec.params:
            if env.scripts is None:
                raise SandboxError("'format' nodes with a script need the sandbox: " + SANDBOX_HINT)
            self._host = env.scripts

    async def work(self, call: Call) -> Any:
        params = call.params
        routed = _latest_route(call.ctx.results)
        tool_call_id = params.get("tool_call_id", routed.get("tool_call_id"))
        name = params.get("name", routed.get("tool_name"))
        if "content" in params:
            content: Any = params["content"]
        elif _is_http_output(call.input):
            content = call.input["body"]
        else:
            content = call.input
        if self._host is not None:
            scope = {
                **self.scope(call.ctx),
                "params": {k: v for k, v in params.items() if k != "script"},
                "tool_call": routed.get("tool_call"),
            }
            value = await run_script(self._host, str(self.spec.params["script"]), scope, call.ctx)
            if isinstance(value, Mapping) and "role" in value:
                return dict(value)
            content = value
        if not isinstance(tool_call_id, str) or not tool_call_id:
            raise ExecutionError(
                f"node '{self.node_id}': no tool_call_id: give the param, or run a router "
                "node before this one",
                node_id=self.node_id,
            )
        text = content if isinstance(content, str) else json.dumps(content, default=str)
        if len(text) > MAX_CONTENT_CHARS:
            text = text[:MAX_CONTENT_CHARS]
            call.ctx.log(f"tool result cut to {MAX_CONTENT_CHARS} characters", level="warning")
        return {"role": "tool", "tool_call_id": tool_call_id, "name": name, "content": text}


def _latest_route(results: Mapping[str, Any]) -> Mapping[str, Any]:
    """A router output among the run's results (the last one found when a flow has several
    routers: name the call with params then)."""
    found: Mapping[str, Any] = {}
    for value in results.values():
        if isinstance(value, Mapping) and value.get("tool_call_id") and "tool_name" in value:
            found = value
    return found


def _is_http_output(value: Any) -> bool:
    return isinstance(value, Mapping) and "status_code" in value and "body" in value


FORMAT = DefinedNodeType(
    "format",
    'Turn a tool\'s result into the {role: "tool", tool_call_id, name, content} message '
    "(tool_call_id and name default to the latest router output; content to the input), "
    "or format it with a JavaScript script.",
    FormatNode,
    {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "tool_call_id": {"type": "string"},
            "name": {"type": "string"},
            "content": {},
            "script": {"type": "string", "minLength": 1},
        },
    },
)
