"""The ``llm`` node: one model call (plus structured-output repairs), the original's keys out.

Output: ``content``, ``tool_calls`` (OpenAI wire shape), ``has_tool_calls``,
``finish_reason``, ``usage``, ``structured_output``, ``model``, and, for building the next
turn, ``message`` (the reply as an assistant message) and ``messages`` (the conversation sent,
plus the reply); ``raw_response`` when asked for. Action: ``tool_calls`` when the model asked
for tools, else ``default``.

The SDK client is built per call on the process's shared guarded connection pool (cheap: the
SDK object is a thin wrapper), so the key lives only as long as the call.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, ClassVar

from flowrunner.config import load_settings
from flowrunner.errors import ExecutionError
from flowrunner.nodes.base import Call, DefinedNode, DefinedNodeType
from flowrunner.nodes.live import LIVE_SINK, TextStream
from flowrunner.nodes.llm.errors import LLMError, LLMOutputInvalid
from flowrunner.nodes.llm.params import PARAMS_SCHEMA, LLMCall, LLMParamError, llm_call
from flowrunner.nodes.llm.providers import make_provider
from flowrunner.nodes.llm.structured import check_schema, parse_reply, repair_message
from flowrunner.nodes.llm.types import ChatResult, JSONDict, Provider, Usage
from flowrunner.nodes.llm.usage import USAGE_METER, metered_chat
from flowrunner.outbound import AddressPolicy, request_slot

if TYPE_CHECKING:
    from flowrunner.nodes.spec import BuildEnv


class LLMNode(DefinedNode):
    __slots__ = ("_max_connections", "_policy")

    actions: ClassVar[frozenset[str] | None] = frozenset({"tool_calls"})

    def setup(self, env: BuildEnv) -> None:
        settings = load_settings()
        try:
            self._policy = AddressPolicy.from_settings(
                settings.http_allow_private, settings.http_allow
            )
        except ValueError as exc:
            raise ExecutionError(str(exc)) from exc
        self._max_connections = settings.http_max_connections

    async def work(self, call: Call) -> Any:
        spec = llm_call(self.node_id, call.params)
        if spec.output_schema:
            problem = check_schema(spec.output_schema)
            if problem is not None:
                raise LLMParamError(
                    f"node '{self.node_id}': param output_schema is not a JSON Schema: {problem}",
                    node_id=self.node_id,
                )
        from flowrunner.outbound.sdk_client import shared_sdk_client  # httpx2: see errors.py

        client = await shared_sdk_client(self._policy)
        provider = make_provider(spec.provider, spec.api_key, spec.base_url, client)
        try:
            async with request_slot(self._max_connections):  # fair between accounts
                result, structured, usage, sent = await self._converse(call, provider, spec)
        except LLMError as exc:
            raise _named(exc, self.node_id) from exc.__cause__
        call.action = "tool_calls" if result.tool_calls else None
        output: JSONDict = {
            "content": result.content,
            "tool_calls": result.tool_calls,
            "has_tool_calls": bool(result.tool_calls),
            "finish_reason": result.finish_reason,
            "usage": usage.as_dict(),
            "structured_output": structured,
            "model": result.model or spec.request.model,
            "message": result.assistant_message(),
            "messages": [*sent, result.assistant_message()],
        }
        if spec.raw_response:
            output["raw_response"] = result.raw
        return output

    async def _converse(
        self, call: Call, provider: Provider, spec: LLMCall
    ) -> tuple[ChatResult, Any, Usage, list[JSONDict]]:
        """Call the model; with an output schema, ask again while the reply is invalid."""
        meter = call.ctx.scoped(USAGE_METER)
        stream = TextStream(self.node_id, call.ctx.scoped(LIVE_SINK)) if spec.stream else None
        messages = [dict(m) for m in spec.request.messages]
        total = Usage()
        for attempt in range(spec.max_repairs + 1):
            request = dataclasses.replace(spec.request, messages=messages)
            result = await metered_chat(meter, self.node_id, provider, request, stream)
            if stream is not None:
                stream.flush()
            total += result.usage
            if spec.output_schema is None or result.tool_calls:
                return result, None, total, messages
            value, problem = parse_reply(result.content, spec.output_schema)
            if problem is None:
                return result, value, total, messages
            if attempt == spec.max_repairs:
                raise LLMOutputInvalid(
                    f"structured output still invalid after {attempt + 1} "
                    f"attempt{'s' if attempt else ''}: {problem}"
                )
            call.ctx.log(
                f"structured output invalid ({problem}); asking the model again",
                level="warning",
                attempt=attempt + 1,
            )
            messages = [
                *messages,
                result.assistant_message(),
                repair_message(problem, spec.output_schema),
            ]
        raise AssertionError("unreachable")  # pragma: no cover  # the loop returns or raises


def _named(exc: LLMError, node_id: str) -> LLMError:
    """The same error, its message naming the node (the retry hint kept)."""
    exc.message = f"node '{node_id}': {exc.message}"
    exc.args = (exc.message,)
    exc.context.setdefault("node_id", node_id)
    return exc


LLM = DefinedNodeType(
    "llm",
    "Call a language model (provider openai or anthropic; messages or prompt + system; "
    "tools, structured output, streaming). Output: content, tool_calls, has_tool_calls, "
    "finish_reason, usage, structured_output, model, message, messages. Action: tool_calls "
    "when the model asked for tools, else default.",
    LLMNode,
    PARAMS_SCHEMA,
)
