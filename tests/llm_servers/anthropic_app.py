"""An Anthropic-compatible Messages endpoint answering from script.py."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.llm_servers.script import Reply, Turn, answer, count_tokens
from tests.llm_servers.state import ServerState

_STOP = {"stop": "end_turn", "tool_calls": "tool_use", "content_filter": "refusal"}
_KINDS = {
    401: "authentication_error",
    429: "rate_limit_error",
    400: "invalid_request_error",
    500: "api_error",
}


def anthropic_app(state: ServerState) -> Starlette:
    async def messages(request: Request) -> Response:
        body = await request.json()
        state.requests.append(body)
        # The API takes x-api-key; recent SDKs send the key as a bearer token instead.
        bearer = request.headers.get("authorization", "").removeprefix("Bearer ")
        key = request.headers.get("x-api-key") or bearer
        state.keys.append(key)
        if state.api_key is not None and key != state.api_key:
            return _error(401, "invalid x-api-key")
        if not isinstance(body.get("max_tokens"), int):
            return _error(400, "max_tokens: Field required")
        turns = [t for m in body.get("messages", []) for t in _turns(m)]
        tools = [t["name"] for t in body.get("tools") or ()]
        schemas = {t["name"]: t.get("input_schema") or {} for t in body.get("tools") or ()}
        model = str(body.get("model", ""))
        wants_json = "JSON Schema" in str(body.get("system") or "")
        reply = answer(model, turns, tools, state.script, wants_json, schemas)
        if reply.error is not None:
            status, _, message = reply.error
            if status == 400:
                message = "prompt is too long: 9000 tokens > 8 maximum"
            headers = {"retry-after": reply.retry_after} if reply.retry_after else None
            return _error(status, message, headers)
        system = body.get("system") or ""
        if isinstance(system, list):
            system = " ".join(str(b.get("text", "")) for b in system)
        prompt = count_tokens([Turn("system", str(system)), *turns])
        output = len(reply.words()) + len(reply.tool_calls)
        if body.get("stream"):
            return StreamingResponse(
                _events(state, model, reply, prompt, output), media_type="text/event-stream"
            )
        content: list[dict[str, Any]] = []
        if reply.text:
            content.append({"type": "text", "text": reply.text})
        for ident, name, arguments in reply.tool_calls:
            content.append({"type": "tool_use", "id": ident, "name": name, "input": arguments})
        return JSONResponse(
            {
                "id": "msg_scripted",
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": content,
                "stop_reason": _STOP.get(reply.finish, "end_turn"),
                "stop_sequence": None,
                "usage": {"input_tokens": prompt, "output_tokens": output},
            }
        )

    return Starlette(routes=[Route("/v1/messages", messages, methods=["POST"])])


def _turns(message: dict[str, Any]) -> list[Turn]:
    role = str(message.get("role"))
    content = message.get("content")
    if isinstance(content, str):
        return [Turn(role, content)]
    turns = []
    for block in content or ():
        if block.get("type") == "text":
            turns.append(Turn(role, str(block.get("text", ""))))
        elif block.get("type") == "tool_result":
            result = block.get("content")
            if isinstance(result, list):
                result = "".join(str(b.get("text", "")) for b in result)
            turns.append(Turn("tool", str(result or "")))
        elif block.get("type") == "tool_use":
            turns.append(Turn(role, ""))
    return turns


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    body = {"type": "error", "error": {"type": _KINDS.get(status, "api_error"), "message": message}}
    return JSONResponse(body, status_code=status, headers=headers)


async def _events(
    state: ServerState, model: str, reply: Reply, prompt: int, output: int
) -> AsyncIterator[str]:
    def event(kind: str, data: dict[str, Any]) -> str:
        return f"event: {kind}\ndata: {json.dumps({'type': kind, **data})}\n\n"

    try:
        yield event(
            "message_start",
            {
                "message": {
                    "id": "msg_scripted",
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": {"input_tokens": prompt, "output_tokens": 0},
                }
            },
        )
        index = 0
        words = reply.words()
        if words:
            yield event(
                "content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}
            )
            for n, word in enumerate(words):
                yield event(
                    "content_block_delta",
                    {"index": 0, "delta": {"type": "text_delta", "text": word}},
                )
                if reply.gated and n == 2:
                    state.streaming.set()
                    await state.wait_gate()
            yield event("content_block_stop", {"index": 0})
            index = 1
        for ident, name, arguments in reply.tool_calls:
            yield event(
                "content_block_start",
                {
                    "index": index,
                    "content_block": {"type": "tool_use", "id": ident, "name": name, "input": {}},
                },
            )
            text = json.dumps(arguments)
            for piece in (text[: len(text) // 2], text[len(text) // 2 :]):
                yield event(
                    "content_block_delta",
                    {"index": index, "delta": {"type": "input_json_delta", "partial_json": piece}},
                )
            yield event("content_block_stop", {"index": index})
            index += 1
        yield event(
            "message_delta",
            {
                "delta": {
                    "stop_reason": _STOP.get(reply.finish, "end_turn"),
                    "stop_sequence": None,
                },
                "usage": {"output_tokens": output},
            },
        )
        yield event("message_stop", {})
    finally:
        if reply.gated and not state.gate.is_set():
            state.disconnected.set()
