"""The ``openai`` provider: Chat Completions through the official ``openai`` SDK.

Any OpenAI-compatible endpoint works through ``base_url`` (Ollama, vLLM, llama.cpp,
OpenRouter, an Azure-style deployment path). The SDK's own retries are off: retrying is the
node's ``retry`` policy, so every attempt is visible as a run event.
"""

from __future__ import annotations

from typing import Any

import httpx2
import openai

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

NAME = "openai"


class OpenAIProvider:
    name = NAME

    def __init__(self, api_key: str, base_url: str | None, http_client: httpx2.AsyncClient):
        self._client = openai.AsyncOpenAI(
            api_key=api_key or "none",  # local servers take any key; the SDK insists on one
            base_url=base_url or None,
            http_client=http_client,
            max_retries=0,
        )

    async def chat(self, request: ChatRequest, on_text: OnText | None = None) -> ChatResult:
        kwargs = _arguments(request)
        try:
            if on_text is None:
                response = await self._client.chat.completions.create(**kwargs)
                return _result(response.model_dump(exclude_none=True))
            return await self._stream(kwargs, on_text)
        except openai.APIStatusError as exc:
            raise answer_error(
                NAME, exc.status_code, exc.body, exc.message, exc.response.headers
            ) from exc
        except (openai.APIConnectionError, ResponseTooLarge, httpx2.HTTPError) as exc:
            raise transport_error(NAME, exc, timeout=request.timeout) from exc
        except openai.OpenAIError as exc:
            raise LLMError(f"openai: {exc}") from exc

    async def _stream(self, kwargs: dict[str, Any], on_text: OnText) -> ChatResult:
        stream = await self._client.chat.completions.create(
            **kwargs, stream=True, stream_options={"include_usage": True}
        )
        content: list[str] = []
        calls: dict[int, JSONDict] = {}
        finish = "stop"
        usage = Usage()
        model = str(kwargs["model"])
        size = 0
        try:
            async for chunk in stream:
                size += sum(len(c.delta.content or "") for c in chunk.choices)
                if size > MAX_STREAMED_CHARS:
                    raise LLMError(
                        f"openai: the streamed reply passed {MAX_STREAMED_CHARS} characters"
                    )
                model = chunk.model or model
                if chunk.usage is not None:
                    usage = Usage(chunk.usage.prompt_tokens, chunk.usage.completion_tokens)
                for choice in chunk.choices[:1]:
                    delta = choice.delta
                    if delta.content:
                        content.append(delta.content)
                        on_text(delta.content)
                    for part in delta.tool_calls or ():
                        call = calls.setdefault(
                            part.index,
                            {
                                "id": "",
                                "type": "function",
                                "function": {"name": "", "arguments": ""},
                            },
                        )
                        if part.id:
                            call["id"] = part.id
                        if part.function is not None:
                            call["function"]["name"] += part.function.name or ""
                            call["function"]["arguments"] += part.function.arguments or ""
                    if choice.finish_reason:
                        finish = choice.finish_reason
        finally:
            await stream.close()  # a cancel mid-stream closes the connection
        result = ChatResult(
            content="".join(content) if content or not calls else None,
            tool_calls=[calls[i] for i in sorted(calls)],
            finish_reason=finish,
            usage=usage,
            model=model,
        )
        _check_filtered(result)
        return result


def _arguments(request: ChatRequest) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "model": request.model,
        "messages": [dict(m) for m in request.messages],
        "timeout": request.timeout,
    }
    for name in ("temperature", "max_tokens", "top_p"):
        value = getattr(request, name)
        if value is not None:
            kwargs[name] = value
    if request.stop:
        kwargs["stop"] = list(request.stop)
    if request.tools:
        kwargs["tools"] = [dict(t) for t in request.tools]
    if request.tool_choice is not None:
        kwargs["tool_choice"] = request.tool_choice
    if request.output_schema is not None:
        schema = dict(request.output_schema)
        kwargs["response_format"] = (
            {"type": "json_schema", "json_schema": {"name": "output", "schema": schema}}
            if schema
            else {"type": "json_object"}
        )
    return kwargs


def _result(raw: JSONDict) -> ChatResult:
    choices = raw.get("choices") or [{}]
    message = choices[0].get("message") or {}
    usage = raw.get("usage") or {}
    calls = [
        {
            "id": c.get("id", ""),
            "type": "function",
            "function": {
                "name": (c.get("function") or {}).get("name", ""),
                "arguments": (c.get("function") or {}).get("arguments") or "{}",
            },
        }
        for c in message.get("tool_calls") or ()
    ]
    result = ChatResult(
        content=message.get("content"),
        tool_calls=calls,
        finish_reason=choices[0].get("finish_reason") or "stop",
        usage=Usage(usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0)),
        model=raw.get("model", ""),
        raw=raw,
    )
    _check_filtered(result)
    return result


def _check_filtered(result: ChatResult) -> None:
    if result.finish_reason == "content_filter" and not result.content:
        raise LLMContentFiltered("openai: the reply was withheld by the content filter")
