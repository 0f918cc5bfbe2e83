"""The ``anthropic`` provider: the Messages API through the official ``anthropic`` SDK.

Requests arrive in the OpenAI wire shapes (types.py) and are converted here: ``system``
messages become the ``system`` param, an assistant's ``tool_calls`` become ``tool_use``
blocks, ``tool`` messages become ``tool_result`` blocks of a user turn (consecutive ones
merged: the API wants roles to alternate), tools get ``input_schema``, image parts become
image blocks. Replies are converted back, so a flow reads the same keys from either provider.
Structured output is asked for in the system prompt (the schema verbatim) and checked by the
node like any other reply.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import anthropic
import httpx2

from flowrunner.nodes.llm.errors import (
    LLMContentFiltered,
    LLMError,
    answer_error,
    transport_error,
)
from flowrunner.nodes.llm.types import (
    MAX_STREAMED_CHARS,
    ChatRequest,
    ChatResult,
    JSONDict,
    OnText,
    Usage,
)
from flowrunner.outbound.httpx2_client import ResponseTooLarge

NAME = "anthropic"
DEFAULT_MAX_TOKENS = 1024  # the Messages API requires one

_FINISH = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


class AnthropicProvider:
    name = NAME

    def __init__(self, api_key: str, base_url: str | None, http_client: httpx2.AsyncClient):
        self._client = anthropic.AsyncAnthropic(
            api_key=api_key or "none",
            base_url=base_url or None,
            http_client=http_client,
            max_retries=0,
        )

    async def chat(self, request: ChatRequest, on_text: OnText | None = None) -> ChatResult:
        kwargs = to_anthropic(request)
        try:
            if on_text is None:
                message = await self._client.messages.create(**kwargs)
                return from_anthropic(message.model_dump(exclude_none=True))
            return await self._stream(kwargs, on_text)
        except anthropic.APIStatusError as exc:
            raise answer_error(
                NAME, exc.status_code, exc.body, exc.message, exc.response.headers
            ) from exc
        except (anthropic.APIConnectionError, ResponseTooLarge, httpx2.HTTPError) as exc:
            raise transport_error(NAME, exc, timeout=request.timeout) from exc
        except anthropic.AnthropicError as exc:
            raise LLMError(f"anthropic: {exc}") from exc

    async def _stream(self, kwargs: dict[str, Any], on_text: OnText) -> ChatResult:
        stream = await self._client.messages.create(**kwargs, stream=True)
        blocks: dict[int, JSONDict] = {}
        stop = "end_turn"
        prompt = completion = 0
        model = str(kwargs["model"])
        size = 0
        try:
            async for event in stream:
                kind = event.type
                if kind == "content_block_delta":
                    delta_text = getattr(event.delta, "text", None) or getattr(
                        event.delta, "partial_json", ""
                    )
                    size += len(delta_text or "")
                    if size > MAX_STREAMED_CHARS:
                        raise LLMError(
                            f"anthropic: the streamed reply passed {MAX_STREAMED_CHARS} characters"
                        )
                if kind == "message_start":
                    model = event.message.model or model
                    prompt = event.message.usage.input_tokens or 0
                    completion = event.message.usage.output_tokens or 0
                elif kind == "content_block_start":
                    block = event.content_block.model_dump(exclude_none=True)
                    if block.get("type") == "tool_use":
                        block["partial"] = ""
                    blocks[event.index] = block
                elif kind == "content_block_delta":
                    block = blocks.setdefault(event.index, {"type": "text", "text": ""})
                    delta = event.delta
                    if delta.type == "text_delta":
                        block["text"] = block.get("text", "") + delta.text
                        on_text(delta.text)
                    elif delta.type == "input_json_delta":
                        block["partial"] = block.get("partial", "") + delta.partial_json
                elif kind == "message_delta":
                    stop = event.delta.stop_reason or stop
                    completion = event.usage.output_tokens or completion
        finally:
            await stream.close()
        content = []
        for index in sorted(blocks):
            block = blocks[index]
            if block.get("type") == "tool_use":
                partial = block.pop("partial", "")
                block["input"] = json.loads(partial) if partial else block.get("input", {})
            content.append(block)
        raw = {
            "model": model,
            "content": content,
            "stop_reason": stop,
            "usage": {"input_tokens": prompt, "output_tokens": completion},
        }
        result = from_anthropic(raw)
        result.raw = None  # assembled by us, not what the provider sent
        return result


def to_anthropic(request: ChatRequest) -> dict[str, Any]:
    """The Messages API arguments for a provider-neutral request."""
    system, messages = _messages(request.messages)
    if request.output_schema is not None:
        schema = json.dumps(dict(request.output_schema) or {"type": "object"})
        system.append(
            "Reply with only a JSON value (no prose, no code fence) that matches this JSON "
            f"Schema: {schema}"
        )
    kwargs: dict[str, Any] = {
        "model": request.model,
        "messages": messages,
        "max_tokens": request.max_tokens or DEFAULT_MAX_TOKENS,
        "timeout": request.timeout,
    }
    if system:
        kwargs["system"] = "\n\n".join(system)
    if request.temperature is not None:
        kwargs["temperature"] = request.temperature
    if request.top_p is not None:
        kwargs["top_p"] = request.top_p
    if request.stop:
        kwargs["stop_sequences"] = list(request.stop)
    if request.tools:
        kwargs["tools"] = [_tool(t) for t in request.tools]
    choice = _tool_choice(request.tool_choice)
    if choice is not None and request.tools:
        kwargs["tool_choice"] = choice
    return kwargs


def from_anthropic(raw: JSONDict) -> ChatResult:
    """A provider-neutral result from a Messages API reply."""
    texts: list[str] = []
    calls: list[JSONDict] = []
    for block in raw.get("content") or ():
        if block.get("type") == "text":
            texts.append(str(block.get("text", "")))
        elif block.get("type") == "tool_use":
            calls.append(
                {
                    "id": block.get("id", ""),
                    "type": "function",
                    "function": {
                        "name": block.get("name", ""),
                        "arguments": json.dumps(block.get("input") or {}),
                    },
                }
            )
    usage = raw.get("usage") or {}
    stop = str(raw.get("stop_reason") or "end_turn")
    result = ChatResult(
        content="".join(texts) if texts or not calls else None,
        tool_calls=calls,
        finish_reason=_FINISH.get(stop, stop),
        usage=Usage(usage.get("input_tokens") or 0, usage.get("output_tokens") or 0),
        model=str(raw.get("model", "")),
        raw=raw,
    )
    if result.finish_reason == "content_filter" and not result.content:
        raise LLMContentFiltered("anthropic: the model refused to answer")
    return result


def _messages(source: Sequence[Mapping[str, Any]]) -> tuple[list[str], list[JSONDict]]:
    system: list[str] = []
    out: list[JSONDict] = []

    def add(role: str, blocks: list[JSONDict]) -> None:
        if out and out[-1]["role"] == role:  # roles must alternate: merge the turn
            out[-1]["content"].extend(blocks)
        else:
            out.append({"role": role, "content": blocks})

    for message in source:
        role = message.get("role")
        content = message.get("content")
        if role in ("system", "developer"):
            system.append(_text_of(content))
        elif role == "tool":
            add(
                "user",
                [
                    {
                        "type": "tool_result",
                        "tool_use_id": str(message.get("tool_call_id", "")),
                        "content": _text_of(content),
                    }
                ],
            )
        elif role == "assistant":
            blocks = _blocks(content)
            for call in message.get("tool_calls") or ():
                function = call.get("function") or {}
                blocks.append(
                    {
                        "type": "tool_use",
                        "id": call.get("id", ""),
                        "name": function.get("name", ""),
                        "input": _arguments(function.get("arguments")),
                    }
                )
            add("assistant", blocks)
        else:
            add("user", _blocks(content))
    return system, out


def _blocks(content: Any) -> list[JSONDict]:
    if content is None or content == "":
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    blocks: list[JSONDict] = []
    for part in content:
        kind = part.get("type") if isinstance(part, Mapping) else None
        if kind == "text":
            blocks.append({"type": "text", "text": str(part.get("text", ""))})
        elif kind == "image_url":
            url = str((part.get("image_url") or {}).get("url", ""))
            blocks.append({"type": "image", "source": _image_source(url)})
        elif isinstance(part, Mapping):
            blocks.append(dict(part))  # already an Anthropic block
        else:
            blocks.append({"type": "text", "text": str(part)})
    return blocks


def _image_source(url: str) -> JSONDict:
    if url.startswith("data:") and ";base64," in url:
        media, data = url[5:].split(";base64,", 1)
        return {"type": "base64", "media_type": media, "data": data}
    return {"type": "url", "url": url}


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if content is None:
        return ""
    if isinstance(content, list):
        return "".join(
            str(p.get("text", "")) if isinstance(p, Mapping) else str(p) for p in content
        )
    return json.dumps(content)


def _arguments(arguments: Any) -> Any:
    if isinstance(arguments, str):
        try:
            return json.loads(arguments) if arguments.strip() else {}
        except ValueError:
            return {"_raw": arguments}
    return arguments if isinstance(arguments, Mapping) else {}


def _tool(tool: Mapping[str, Any]) -> JSONDict:
    function = tool.get("function") if tool.get("type") == "function" else None
    if not isinstance(function, Mapping):
        return dict(tool)  # already an Anthropic tool
    out: JSONDict = {
        "name": function.get("name", ""),
        "input_schema": function.get("parameters") or {"type": "object", "properties": {}},
    }
    if function.get("description"):
        out["description"] = function["description"]
    return out


def _tool_choice(choice: Any) -> JSONDict | None:
    if choice is None:
        return None
    if choice == "auto":
        return {"type": "auto"}
    if choice == "required":
        return {"type": "any"}
    if choice == "none":
        return {"type": "none"}
    if isinstance(choice, Mapping):
        function = choice.get("function")
        if isinstance(function, Mapping):
            return {"type": "tool", "name": function.get("name", "")}
        return dict(choice)
    return None
