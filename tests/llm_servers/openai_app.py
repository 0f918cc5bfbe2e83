"""An OpenAI-compatible Chat Completions endpoint answering from script.py."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.llm_servers.script import Reply, Turn, answer, count_tokens
from tests.llm_servers.state import ServerState


def openai_app(state: ServerState) -> Starlette:
    async def completions(request: Request) -> Response:
        body = await request.json()
        state.requests.append(body)
        key = request.headers.get("authorization", "").removeprefix("Bearer ")
        state.keys.append(key)
        if state.api_key is not None and key != state.api_key:
            return _error(401, "invalid_api_key", "Incorrect API key provided.")
        turns = [_turn(m) for m in body.get("messages", [])]
        tools = [t["function"]["name"] for t in body.get("tools") or ()]
        schemas = {
            t["function"]["name"]: t["function"].get("parameters") or {}
            for t in body.get("tools") or ()
        }
        model = str(body.get("model", ""))
        wants_json = bool(body.get("response_format"))
        reply = answer(model, turns, tools, state.script, wants_json, schemas)
        if reply.error is not None:
            status, code, text = reply.error
            headers = {"retry-after": reply.retry_after} if reply.retry_after else None
            return _error(status, code, text, headers)
        usage = {
            "prompt_tokens": count_tokens(turns),
            "completion_tokens": len(reply.words()) + len(reply.tool_calls),
        }
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        if body.get("stream"):
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            return StreamingResponse(
                _chunks(state, model, reply, usage if include_usage else None),
                media_type="text/event-stream",
            )
        message: dict[str, Any] = {"role": "assistant", "content": reply.text}
        if reply.tool_calls:
            message["tool_calls"] = [_call(c) for c in reply.tool_calls]
        return JSONResponse(
            {
                "id": "chatcmpl-scripted",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model,
                "choices": [{"index": 0, "message": message, "finish_reason": reply.finish}],
                "usage": usage,
            }
        )

    return Starlette(routes=[Route("/v1/chat/completions", completions, methods=["POST"])])


def _turn(message: dict[str, Any]) -> Turn:
    content = message.get("content")
    if isinstance(content, list):
        content = "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return Turn(str(message.get("role")), str(content or ""))


def _call(call: tuple[str, str, dict[str, Any]]) -> dict[str, Any]:
    ident, name, arguments = call
    return {
        "id": ident,
        "type": "function",
        "function": {"name": name, "arguments": json.dumps(arguments)},
    }


def _error(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    body = {"error": {"message": message, "type": code, "param": None, "code": code}}
    return JSONResponse(body, status_code=status, headers=headers)


async def _chunks(
    state: ServerState, model: str, reply: Reply, usage: dict[str, int] | None
) -> AsyncIterator[str]:
    def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
        data = {
            "id": "chatcmpl-scripted",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
        return f"data: {json.dumps(data)}\n\n"

    try:
        yield chunk({"role": "assistant", "content": ""})
        for index, word in enumerate(reply.words()):
            yield chunk({"content": word})
            if reply.gated and index == 2:
                state.streaming.set()
                await state.wait_gate()
        for index, call in enumerate(reply.tool_calls):
            ident, name, arguments = call
            text = json.dumps(arguments)
            yield chunk(
                {
                    "tool_calls": [
                        {
                            "index": index,
                            "id": ident,
                            "type": "function",
                            "function": {"name": name, "arguments": ""},
                        }
                    ]
                }
            )
            for piece in (text[: len(text) // 2], text[len(text) // 2 :]):
                yield chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
        yield chunk({}, reply.finish)
        if usage is not None:
            data = {
                "id": "chatcmpl-scripted",
                "object": "chat.completion.chunk",
                "created": int(time.time()),
                "model": model,
                "choices": [],
                "usage": usage,
            }
            yield f"data: {json.dumps(data)}\n\n"
        yield "data: [DONE]\n\n"
    finally:
        if reply.gated and not state.gate.is_set():
            state.disconnected.set()
