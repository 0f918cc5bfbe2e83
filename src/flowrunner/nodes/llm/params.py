"""The ``llm`` node's params: their JSON Schema, and turning resolved params into a request.

Params are checked twice: their shape at load time (the schema; a ``${...}`` value is judged
at run time), and the resolved values here, each problem naming the param.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flowrunner.errors import ExecutionError
from flowrunner.nodes.llm.types import ChatRequest

PROVIDERS = ("openai", "anthropic")
DEFAULT_TIMEOUT = 60.0
MAX_TIMEOUT = 600.0
MAX_MESSAGES = 1000
MAX_TOOLS = 128
DEFAULT_REPAIRS = 2
MAX_REPAIRS = 5

_MESSAGE = {
    "type": "object",
    "required": ["role"],
    "properties": {
        "role": {"type": "string", "enum": ["system", "developer", "user", "assistant", "tool"]},
        "content": {"type": ["string", "array", "null"]},
    },
}
_TOOL = {
    "type": "object",
    "properties": {
        "type": {"const": "function"},
        "function": {
            "type": "object",
            "required": ["name"],
            "properties": {
                "name": {"type": "string", "minLength": 1, "maxLength": 64},
                "description": {"type": "string"},
                "parameters": {"type": "object"},
            },
        },
    },
    "required": ["function"],
}

PARAMS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["model"],
    "anyOf": [{"required": ["messages"]}, {"required": ["prompt"]}],
    "properties": {
        "provider": {"type": "string", "enum": list(PROVIDERS), "description": "default openai"},
        "model": {"type": "string", "minLength": 1},
        "api_key": {"type": "string", "description": "use ${secrets.NAME}"},
        "base_url": {"type": "string", "description": "an OpenAI- or Anthropic-compatible URL"},
        "messages": {"type": "array", "items": _MESSAGE, "maxItems": MAX_MESSAGES},
        "prompt": {"type": "string"},
        "system": {"type": "string"},
        "temperature": {"type": "number", "minimum": 0, "maximum": 2},
        "max_tokens": {"type": "integer", "minimum": 1},
        "top_p": {"type": "number", "minimum": 0, "maximum": 1},
        "stop": {"type": ["string", "array"], "items": {"type": "string"}, "maxItems": 16},
        "timeout": {"type": "number", "exclusiveMinimum": 0, "maximum": MAX_TIMEOUT},
        "tools": {"type": "array", "items": _TOOL, "maxItems": MAX_TOOLS},
        "tool_choice": {"type": ["string", "object"]},
        "response_format": {"type": "object", "properties": {"type": {"type": "string"}}},
        "output_schema": {"type": "object"},
        "max_repairs": {"type": "integer", "minimum": 0, "maximum": MAX_REPAIRS},
        "stream": {"type": "boolean"},
        "raw_response": {"type": "boolean", "description": "add the provider's raw reply"},
    },
}


class LLMParamError(ExecutionError):
    code = "invalid_params"


@dataclass(frozen=True, slots=True)
class LLMCall:
    """Resolved params of one visit: where to send it, what to send, how to treat the reply."""

    provider: str
    api_key: str
    base_url: str | None
    request: ChatRequest
    stream: bool
    raw_response: bool
    max_repairs: int
    # The schema a structured reply is checked against ({} = any JSON), None: plain text.
    output_schema: Mapping[str, Any] | None


def llm_call(node_id: str, params: Mapping[str, Any]) -> LLMCall:
    def bad(name: str, why: str) -> LLMParamError:
        return LLMParamError(f"node '{node_id}': param {name}: {why}", node_id=node_id)

    provider = str(params.get("provider") or "openai")
    if provider not in PROVIDERS:
        raise bad("provider", f"must be one of {', '.join(PROVIDERS)}, got {provider!r}")
    model = params.get("model")
    if not isinstance(model, str) or not model:
        raise bad("model", "must be a non-empty string")
    api_key = params.get("api_key")
    if api_key is not None and not isinstance(api_key, str):
        raise bad("api_key", "must be a string (use ${secrets.NAME})")
    base_url = params.get("base_url")
    if base_url is not None and not (
        isinstance(base_url, str) and base_url.startswith(("http://", "https://"))
    ):
        raise bad("base_url", "must be an http:// or https:// URL")
    return LLMCall(
        provider=provider,
        api_key=api_key or "",
        base_url=base_url or None,
        request=ChatRequest(
            model=model,
            messages=_messages(params, bad),
            temperature=_number(params, "temperature", bad),
            max_tokens=_integer(params, "max_tokens", bad),
            top_p=_number(params, "top_p", bad),
            stop=_stop(params.get("stop"), bad),
            tools=_tools(params.get("tools"), bad),
            tool_choice=params.get("tool_choice"),
            output_schema=_schema(params, bad),
            timeout=_timeout(params.get("timeout"), bad),
        ),
        stream=params.get("stream") is True,
        raw_response=params.get("raw_response") is True,
        max_repairs=_repairs(params.get("max_repairs"), bad),
        output_schema=_schema(params, bad),
    )


def _messages(params: Mapping[str, Any], bad: Any) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    system = params.get("system")
    if system is not None:
        if not isinstance(system, str):
            raise bad("system", "must be a string")
        messages.append({"role": "system", "content": system})
    given = params.get("messages")
    if given is not None:
        if not isinstance(given, list):
            raise bad("messages", f"must be a list of messages, got {type(given).__name__}")
        if len(given) > MAX_MESSAGES:
            raise bad("messages", f"at most {MAX_MESSAGES} messages")
        for index, message in enumerate(given):
            if not isinstance(message, Mapping) or not isinstance(message.get("role"), str):
                raise bad(f"messages[{index}]", "must be a mapping with a role")
            messages.append(dict(message))
    prompt = params.get("prompt")
    if prompt is not None:
        text = prompt if isinstance(prompt, str) else _json_text(prompt)
        messages.append({"role": "user", "content": text})
    if not any(m.get("role") != "system" for m in messages):
        raise bad("messages", "give messages or a prompt")
    return messages


def _json_text(value: Any) -> str:
    import json

    return json.dumps(value, ensure_ascii=False, default=str)


def _number(params: Mapping[str, Any], name: str, bad: Any) -> float | None:
    value = params.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise bad(name, "must be a number")
    return float(value)


def _integer(params: Mapping[str, Any], name: str, bad: Any) -> int | None:
    value = params.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise bad(name, "must be a positive integer")
    return value


def _stop(value: Any, bad: Any) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value) and len(value) <= 16:
        return list(value)
    raise bad("stop", "must be a string or a list of at most 16 strings")


def _tools(value: Any, bad: Any) -> list[dict[str, Any]] | None:
    if value is None:
        return None
    if not isinstance(value, list) or len(value) > MAX_TOOLS:
        raise bad("tools", f"must be a list of at most {MAX_TOOLS} tools")
    tools = []
    for index, tool in enumerate(value):
        function = tool.get("function") if isinstance(tool, Mapping) else None
        if not isinstance(function, Mapping) or not isinstance(function.get("name"), str):
            raise bad(f"tools[{index}]", "must be {type: function, function: {name, ...}}")
        tools.append({"type": "function", "function": dict(function)})
    return tools


def _schema(params: Mapping[str, Any], bad: Any) -> Mapping[str, Any] | None:
    schema = params.get("output_schema")
    if schema is not None:
        if not isinstance(schema, Mapping):
            raise bad("output_schema", "must be a JSON Schema object")
        return schema
    response_format = params.get("response_format")
    if response_format is None:
        return None
    if not isinstance(response_format, Mapping):
        raise bad("response_format", "must be a mapping")
    kind = response_format.get("type")
    if kind == "json_object":
        return {}
    if kind == "json_schema":
        inner = response_format.get("json_schema")
        schema = inner.get("schema") if isinstance(inner, Mapping) else None
        if not isinstance(schema, Mapping):
            raise bad("response_format", "json_schema.schema must be a JSON Schema object")
        return schema
    if kind == "text":
        return None
    raise bad("response_format", "type must be text, json_object or json_schema")


def _timeout(value: Any, bad: Any) -> float:
    if value is None:
        return DEFAULT_TIMEOUT
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not 0 < value <= MAX_TIMEOUT
    ):
        raise bad("timeout", f"must be seconds, more than 0 and at most {MAX_TIMEOUT:g}")
    return float(value)


def _repairs(value: Any, bad: Any) -> int:
    if value is None:
        return DEFAULT_REPAIRS
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_REPAIRS:
        raise bad("max_repairs", f"must be an integer from 0 to {MAX_REPAIRS}")
    return value
