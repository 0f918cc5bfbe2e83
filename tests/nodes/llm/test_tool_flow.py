"""A whole tool-calling flow: llm → router → tool (transform or http.request) → format →
llm, ending with the model's final answer built from the tool's result, on both providers."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator

import pytest

from flowrunner.definition import compile_flow, load_flow
from flowrunner.scripting import Sandbox
from tests.http_server import ORDERS, TestServer, running_server
from tests.llm_servers.server import ModelServer
from tests.nodes.llm.conftest import API_KEY, base_url


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    async with Sandbox(workers=1) as box:
        yield box


@pytest.fixture(scope="module")
def api() -> Iterator[TestServer]:
    with running_server() as running:
        yield running


TOOL = "{{type: function, function: {{name: {name}, parameters: {{type: object}}}}}}"


def tool_flow(provider: str, url: str, first_tool: str, api_url: str) -> str:
    names = ["lookup", "fetch_orders"]
    names.sort(key=lambda n: n != first_tool)  # the scripted model calls the first tool
    tools = ", ".join(TOOL.format(name=n) for n in names)
    model = f"""      provider: {provider}
      model: scripted-tools
      base_url: {url}
      api_key: ${{secrets.KEY}}
      tools: [{tools}]"""
    return f"""metadata: {{name: tool calling}}
nodes:
  ask:
    type: llm
    params:
{model}
      system: Use the tools.
      prompt: ${{input.question}}
    next: {{tool_calls: route, default: done}}
  route:
    type: router
    next: {{lookup: lookup, fetch_orders: fetch_orders, no_tool: done}}
  lookup:
    type: transform
    params:
      script: return "42 for " + input.tool_params.query;
    next: {{default: result}}
  fetch_orders:
    type: http.request
    params: {{url: "{api_url}/orders"}}
    next: {{default: result}}
  result:
    type: format
    next: {{default: answer}}
  answer:
    type: llm
    params:
{model}
      messages: ${{[...results.ask.messages, results.result]}}
    next: {{default: done}}
  done:
    type: set
    params: {{values: {{answer: "${{input.content}}"}}}}
"""


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
async def test_a_transform_tool_result_goes_back_to_the_model_for_the_final_answer(
    models: ModelServer, sandbox: Sandbox, api: TestServer, provider: str
) -> None:
    text = tool_flow(provider, base_url(models, provider), "lookup", api.url)
    compiled = compile_flow(load_flow(text), scripts=sandbox)
    result = await compiled.run({"question": "meaning?"}, secrets={"KEY": API_KEY})
    assert result.output == {"answer": "The answer is 42 for meaning?"}
    routed = result.results["route"]
    assert routed["tool_name"] == "lookup"
    assert routed["tool_call_id"] == "call_1"
    assert routed["tool_params"] == {"query": "meaning?"}
    assert result.results["result"] == {
        "role": "tool",
        "tool_call_id": "call_1",
        "name": "lookup",
        "content": "42 for meaning?",
    }
    # The second call carried the whole conversation, in the provider's own shape.
    second = models.state.requests[1]["messages"]
    if provider == "openai":
        assert [m["role"] for m in second] == ["system", "user", "assistant", "tool"]
        assert second[2]["tool_calls"][0]["id"] == "call_1"
        assert second[3]["tool_call_id"] == "call_1"
    else:
        assert [m["role"] for m in second] == ["user", "assistant", "user"]
        assert second[1]["content"][0]["type"] == "tool_use"
        assert second[2]["content"][0] == {
            "type": "tool_result",
            "tool_use_id": "call_1",
            "content": "42 for meaning?",
        }


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
async def test_an_http_request_tool_result_goes_back_to_the_model(
    models: ModelServer, sandbox: Sandbox, api: TestServer, provider: str
) -> None:
    text = tool_flow(provider, base_url(models, provider), "fetch_orders", api.url)
    compiled = compile_flow(load_flow(text), scripts=sandbox)
    result = await compiled.run({"question": "orders?"}, secrets={"KEY": API_KEY})
    assert result.output == {"answer": f"The answer is {json.dumps(ORDERS)}"}
    assert result.results["result"]["name"] == "fetch_orders"
