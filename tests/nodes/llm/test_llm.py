"""The ``llm`` node end to end (load_flow + compile_flow + run) against the scripted
OpenAI- and Anthropic-compatible servers, through the official SDKs: the original's output
keys, tool calls, streaming, structured output with repairs, and each failure as a clear
error."""

from __future__ import annotations

import json
from typing import Any

import pytest

from flowrunner.definition import compile_flow, load_flow
from flowrunner.engine import NodeEvent, RunResult
from flowrunner.errors import DestinationRefused, NodeFailed
from flowrunner.nodes.llm.errors import (
    LLMAuthFailed,
    LLMContentFiltered,
    LLMContextTooLong,
    LLMError,
    LLMOutputInvalid,
    LLMRateLimited,
    LLMUnreachable,
)
from flowrunner.nodes.llm.params import LLMParamError
from tests.llm_servers.script import PERSON, PERSON_SCHEMA
from tests.llm_servers.server import ModelServer
from tests.nodes.llm.conftest import API_KEY, base_url

PROVIDERS = ["openai", "anthropic"]
SECRETS = {"KEY": API_KEY}


def flow(provider: str, url: str, model: str, extra: str = "", retry: str = "") -> str:
    return f"""metadata: {{name: t}}
nodes:
  ask:
    type: llm
    params:
      provider: {provider}
      model: {model}
      base_url: {url}
      api_key: ${{secrets.KEY}}
      prompt: ${{input.question}}
{extra}{retry}"""


async def run(text: str, question: str = "What is a flow?", **kwargs: Any) -> RunResult:
    kwargs.setdefault("secrets", SECRETS)
    return await compile_flow(load_flow(text)).run({"question": question}, **kwargs)


def failure(info: pytest.ExceptionInfo[NodeFailed]) -> BaseException:
    return info.value.cause


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("stream", [False, True])
async def test_a_call_gives_the_originals_output_keys(
    models: ModelServer, provider: str, stream: bool
) -> None:
    extra = f"      system: Be brief.\n      stream: {str(stream).lower()}\n"
    result = await run(flow(provider, base_url(models, provider), "scripted-echo", extra))
    out = result.output
    assert out["content"] == "echo: What is a flow?"
    assert out["tool_calls"] == []
    assert out["has_tool_calls"] is False
    assert out["finish_reason"] == "stop"
    assert out["usage"] == {"prompt_tokens": 6, "completion_tokens": 5, "total_tokens": 11}
    assert out["structured_output"] is None
    assert out["model"] == "scripted-echo"
    assert out["message"] == {"role": "assistant", "content": "echo: What is a flow?"}
    assert [m["role"] for m in out["messages"]] == ["system", "user", "assistant"]
    assert "raw_response" not in out
    assert result.action is None  # default
    assert result.shared["llm_result"] is out  # the original's shared key
    assert models.state.keys == [API_KEY]  # the key went where it belongs, and only there
    sent = models.state.requests[0]
    if provider == "anthropic":
        assert sent["system"] == "Be brief."
        assert sent["max_tokens"] == 1024
    else:
        assert sent["messages"][0] == {"role": "system", "content": "Be brief."}


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("stream", [False, True])
async def test_a_tool_call_comes_back_in_the_openai_wire_shape_and_routes_tool_calls(
    models: ModelServer, provider: str, stream: bool
) -> None:
    extra = (
        f"      stream: {str(stream).lower()}\n"
        "      tool_choice: auto\n"
        "      tools:\n"
        "        - type: function\n"
        "          function: {name: lookup, description: Look it up, parameters: {type: object,"
        " properties: {query: {type: string}}}}\n"
    )
    result = await run(flow(provider, base_url(models, provider), "scripted-tools", extra))
    out = result.output
    assert result.action == "tool_calls"
    assert out["has_tool_calls"] is True
    assert out["finish_reason"] == "tool_calls"
    assert out["tool_calls"] == [
        {
            "id": "call_1",
            "type": "function",
            "function": {"name": "lookup", "arguments": json.dumps({"query": "What is a flow?"})},
        }
    ]
    assert out["content"] is None
    sent = models.state.requests[0]
    if provider == "anthropic":  # converted to Anthropic's tool shape
        assert sent["tools"][0]["input_schema"]["properties"] == {"query": {"type": "string"}}
        assert sent["tool_choice"] == {"type": "auto"}
    else:
        assert sent["tools"][0]["function"]["name"] == "lookup"


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_raw_response_is_added_only_when_asked_for_and_never_holds_the_key(
    models: ModelServer, provider: str
) -> None:
    extra = "      raw_response: true\n"
    result = await run(flow(provider, base_url(models, provider), "scripted-echo", extra))
    raw = result.output["raw_response"]
    assert raw["model"] == "scripted-echo"
    assert API_KEY not in json.dumps(result.output)


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_structured_output_is_parsed_and_validated(
    models: ModelServer, provider: str
) -> None:
    extra = f"      output_schema: {json.dumps(PERSON_SCHEMA)}\n"
    result = await run(flow(provider, base_url(models, provider), "scripted-json", extra))
    assert result.output["structured_output"] == PERSON
    assert len(models.state.requests) == 1


async def test_response_format_json_schema_is_sent_to_openai_as_is(models: ModelServer) -> None:
    response_format = {"type": "json_schema", "json_schema": {"name": "p", "schema": PERSON_SCHEMA}}
    extra = f"      response_format: {json.dumps(response_format)}\n"
    result = await run(flow("openai", models.openai_url, "scripted-json", extra))
    assert result.output["structured_output"] == PERSON
    sent = models.state.requests[0]["response_format"]
    assert sent["type"] == "json_schema"
    assert sent["json_schema"]["schema"] == PERSON_SCHEMA


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_invalid_structured_output_is_repaired_with_the_validation_error_fed_back(
    models: ModelServer, provider: str
) -> None:
    events: list[NodeEvent] = []
    extra = f"      output_schema: {json.dumps(PERSON_SCHEMA)}\n"
    result = await run(
        flow(provider, base_url(models, provider), "scripted-json-repair", extra),
        observer=events.append,
    )
    assert result.output["structured_output"] == PERSON
    assert len(models.state.requests) == 2
    repair = models.state.requests[1]["messages"][-1]
    text = repair["content"] if isinstance(repair["content"], str) else repair["content"][0]["text"]
    assert "'age' is a required property" in text
    assert any(e.kind == "log" and "structured output invalid" in (e.message or "") for e in events)
    assert result.output["usage"]["completion_tokens"] == 2 + 4  # both calls count


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_structured_output_still_invalid_after_the_repairs_fails_clearly(
    models: ModelServer, provider: str
) -> None:
    extra = f"      output_schema: {json.dumps(PERSON_SCHEMA)}\n      max_repairs: 1\n"
    with pytest.raises(NodeFailed) as info:
        await run(flow(provider, base_url(models, provider), "scripted-json-bad", extra))
    error = failure(info)
    assert isinstance(error, LLMOutputInvalid)
    assert str(error).startswith("node 'ask': structured output still invalid after 2 attempts")
    assert "not valid JSON" in str(error)
    assert len(models.state.requests) == 2


async def test_an_output_schema_that_is_no_json_schema_is_refused_before_calling(
    models: ModelServer,
) -> None:
    extra = "      output_schema: {type: 12}\n"
    with pytest.raises(NodeFailed) as info:
        await run(flow("openai", models.openai_url, "scripted-json", extra))
    assert isinstance(failure(info), LLMParamError)
    assert "param output_schema is not a JSON Schema" in str(failure(info))
    assert models.state.requests == []


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_refused_key_is_an_auth_failure_that_does_not_quote_the_key(
    models: ModelServer, provider: str
) -> None:
    wrong = "sk-wrong-key-0000"
    with pytest.raises(NodeFailed) as info:
        await run(
            flow(provider, base_url(models, provider), "scripted-echo"), secrets={"KEY": wrong}
        )
    error = failure(info)
    assert isinstance(error, LLMAuthFailed)
    assert error.code == "llm_auth_failed"
    assert f"{provider} answered 401" in str(error)
    assert wrong not in str(error)


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_rate_limit_is_retried_after_the_providers_retry_after(
    models: ModelServer, provider: str
) -> None:
    events: list[NodeEvent] = []
    retry = "    retry: {max_retries: 2, wait: 0s}\n"
    result = await run(
        flow(provider, base_url(models, provider), "scripted-rate-limit", "", retry),
        observer=events.append,
    )
    assert result.output["content"] == "echo: What is a flow?"
    retrying = [e for e in events if e.kind == "retrying"]
    assert len(retrying) == 1
    assert isinstance(retrying[0].error, LLMRateLimited)
    assert retrying[0].fields == {"wait": 1.0}  # the server's Retry-After, over wait: 0s
    assert len(models.state.requests) == 2


async def test_a_rate_limit_without_retries_fails_with_the_hint(models: ModelServer) -> None:
    with pytest.raises(NodeFailed) as info:
        await run(flow("openai", models.openai_url, "scripted-rate-limit"))
    error = failure(info)
    assert isinstance(error, LLMRateLimited)
    assert error.retry_after == 1.0


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize(
    ("model", "kind"),
    [
        ("scripted-context", LLMContextTooLong),
        ("scripted-filter", LLMContentFiltered),
        ("scripted-5xx", LLMError),
    ],
)
async def test_provider_failures_map_to_clear_errors(
    models: ModelServer, provider: str, model: str, kind: type[LLMError]
) -> None:
    with pytest.raises(NodeFailed) as info:
        await run(flow(provider, base_url(models, provider), model))
    assert type(failure(info)) is kind
    assert str(failure(info)).startswith(f"node 'ask': {provider}")


async def test_an_error_edge_gets_the_llm_error(models: ModelServer) -> None:
    text = flow("openai", models.openai_url, "scripted-context") + (
        "    next: {error: handled}\n"
        "  handled: {type: set, params: {values: {code: '${error.type}'}}}\n"
    )
    result = await run(text)
    assert result.output == {"code": "LLMContextTooLong"}


async def test_an_unreachable_endpoint_is_a_clear_error() -> None:
    with pytest.raises(NodeFailed) as info:
        await run(flow("openai", "http://127.0.0.1:9/v1", "scripted-echo"))
    assert isinstance(failure(info), LLMUnreachable)
    assert "cannot reach the endpoint" in str(failure(info))


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_private_endpoint_is_refused_by_the_ssrf_guard(
    models: ModelServer, provider: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FLOWRUNNER_HTTP_ALLOW_PRIVATE")
    with pytest.raises(NodeFailed) as info:
        await run(flow(provider, base_url(models, provider), "scripted-echo"))
    assert isinstance(failure(info), DestinationRefused)
    assert "loopback" in str(failure(info))
    assert models.state.requests == []


async def test_bad_params_name_the_param(models: ModelServer) -> None:
    text = flow("openai", models.openai_url, "scripted-echo", "      temperature: ${input.t}\n")
    with pytest.raises(NodeFailed) as info:
        await compile_flow(load_flow(text)).run({"question": "q", "t": "hot"}, secrets=SECRETS)
    assert str(failure(info)) == "node 'ask': param temperature: must be a number"
