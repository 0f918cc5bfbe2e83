"""The ``agent`` node through a real ``flowrunner serve``: a model (the scripted
OpenAI-compatible server) calling, at once, an MCP server's tool (a stdio server the admin
allowed), a JavaScript function, a stored flow (a child execution) and another node of the
flow (a ``store`` read, its key filled by the model); every step in the
run's history; the run's token usage in ``GET /executions/{id}``; the monthly budget
stopping the loop; the API key in no answer, event, log line or byte of the database."""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.leaks import database_bytes, leaks
from tests.e2e.models import API_KEY, keep_llm_key
from tests.e2e.server import Server, create_flow, finished_run, start_run, stored_events
from tests.llm_servers.server import ModelServer
from tests.nodes.mcp.conftest import ALLOWED, SCRIPT

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with Server(
        tmp_path_factory.mktemp("agent"), http_allow_private="true", mcp_stdio_commands=ALLOWED
    ) as running:
        yield running


@pytest.fixture
async def client(server: Server) -> AsyncIterator[httpx.AsyncClient]:
    async with server.client() as http:
        await keep_llm_key(http)
        yield http


HELPER = """metadata: {name: agent-helper}
nodes:
  found:
    type: set
    params: {values: {city: "${input.city}", found: true}}
"""


def agent_flow(url: str, model: str, name: str) -> str:
    return f"""metadata: {{name: {name}}}
nodes:
  seed:
    type: store
    params: {{operation: set, namespace: cities, key: Lyon, value: {{population: 522000}}}}
    next: {{default: think}}
  think:
    type: agent
    params:
      provider: openai
      model: {model}
      base_url: {url}
      api_key: ${{secrets.LLM_KEY}}
      prompt: ${{shared.question}}
      tools:
        - mcp: {{command: "{sys.executable}", args: ["{SCRIPT}"]}}
          only: [add]
        - name: shout
          parameters: {{type: object, properties: {{text: {{type: string}}}}}}
          script: return args.text.toUpperCase();
        - name: lookup
          description: Find a city
          parameters: {{type: object, properties: {{city: {{type: string}}}}}}
          flow: agent-helper
        - node: population
          params: [key]
  population:
    type: store
    description: The population of a city
    params: {{operation: get, namespace: cities, key: nowhere}}
"""


async def test_an_agent_calls_mcp_script_stored_flow_and_node_tools_and_its_usage_is_kept(
    server: Server, client: httpx.AsyncClient, models: ModelServer
) -> None:
    await create_flow(client, HELPER)
    flow_id = await create_flow(client, agent_flow(models.openai_url, "scripted-agent", "a1"))
    execution_id = await start_run(client, flow_id, {"question": "Lyon"})
    run = await finished_run(client, execution_id)
    assert run["status"] == "completed", run
    out = run["output"]
    assert out["response"] == (
        'Results: {"result": 5} | LYON | {"city": "Lyon", "found": true} | {"population": 522000}'
    )
    tools = [r["tool"] for r in out["intermediate_results"]]
    assert tools == ["add", "shout", "lookup", "population"]
    assert out["intermediate_results"][3]["arguments"] == {"key": "Lyon"}
    assert out["steps"] == 2
    # The stored flow ran as a child execution of this run.
    children = (await client.get(f"/api/v1/executions/{execution_id}/children")).json()
    assert [c["status"] for c in children["items"]] == ["completed"]
    # Usage is kept with the execution and shown by GET execution.
    usage = run["usage"]
    assert usage["calls"] == 2
    assert usage["nodes"]["think"]["calls"] == 2
    assert usage["total_tokens"] == out["usage"]["total_tokens"] > 0
    assert (await client.get(f"/api/v1/executions/{execution_id}/usage")).json() == usage
    listed = (await client.get("/api/v1/executions", params={"flow_id": flow_id})).json()
    assert listed["items"][0]["usage"] == usage
    # Every step is in the run's history.
    events = await stored_events(client, execution_id)
    steps = [
        (e["data"]["fields"]["event"], e["data"]["fields"].get("tool"))
        for e in events
        if e["type"] == "log" and "event" in (e["data"].get("fields") or {})
    ]
    assert steps[0] == ("agent.model_call", None)
    assert sorted(t for kind, t in steps if kind == "agent.tool_call") == [
        "add",
        "lookup",
        "population",
        "shout",
    ]
    assert sorted(t for kind, t in steps if kind == "agent.tool_result") == [
        "add",
        "lookup",
        "population",
        "shout",
    ]
    # The node tool ran as a step of the run, nested under the agent; the run's route
    # went seed → think and ended there.
    nodes = [
        (e["data"]["node_id"], e["data"]["state"], e["data"].get("flow_path"))
        for e in events
        if e["type"] == "node"
    ]
    assert [n for n in nodes if n[0] == "population"] == [
        ("population", "started", ["think"]),
        ("population", "finished", ["think"]),
    ]
    assert [n[:2] for n in nodes if n[1] == "finished" and n[2] is None] == [
        ("seed", "finished"),
        ("think", "finished"),
    ]
    assert steps[-1] == ("agent.model_call", None)
    # The key went to the model server only.
    assert models.state.keys == [API_KEY, API_KEY]
    answers = json.dumps([run, events, children]).encode()
    assert leaks(answers, API_KEY) == []
    assert leaks(database_bytes(server), API_KEY) == []
    assert leaks(server.log.read_bytes(), API_KEY) == []


async def test_max_steps_exhausted_fails_the_run_with_the_conversation_so_far(
    client: httpx.AsyncClient, models: ModelServer
) -> None:
    text = f"""metadata: {{name: loop}}
nodes:
  think:
    type: agent
    params:
      provider: openai
      model: scripted-agent-loop
      base_url: {models.openai_url}
      api_key: ${{secrets.LLM_KEY}}
      prompt: Shout it
      max_steps: 2
      tools:
        - name: shout
          parameters: {{type: object, properties: {{text: {{type: string}}}}}}
          script: return args.text.toUpperCase();
"""
    execution_id = await start_run(client, await create_flow(client, text), {})
    run = await finished_run(client, execution_id)
    assert run["status"] == "failed", run
    error = run["error"]
    assert (error["code"], error["node_id"]) == ("agent_max_steps", "think")
    assert "max_steps (2)" in error["message"]
    conversation = error["details"]["conversation"]
    assert [m["role"] for m in conversation] == ["user", "assistant", "tool", "assistant", "tool"]
    assert conversation[2]["content"] == "SHOUT IT"
    assert error["details"]["steps"] == 2
    assert len(models.state.requests) == 2
    # The node's failed event carries it too, and the key is in none of it.
    events = await stored_events(client, execution_id)
    failed = next(e for e in events if e["type"] == "node" and e["data"]["state"] == "failed")
    assert failed["data"]["error"]["details"]["conversation"] == conversation
    assert leaks(json.dumps([run, events]).encode(), API_KEY) == []


async def test_the_monthly_budget_stops_an_agent_between_steps(
    tmp_path: Path, models: ModelServer
) -> None:
    # The model fills each string argument with the question: a long one makes the second
    # step's conversation (the arguments, the results) far larger than the first step's, so
    # a budget between the two holds lets the first step run and refuses the second.
    question = " ".join(["Oslo"] * 800)
    with Server(
        tmp_path, http_allow_private="true", mcp_stdio_commands=ALLOWED,
        llm_monthly_token_budget=BUDGET,
    ) as budgeted:  # fmt: skip
        async with budgeted.client() as http:
            await keep_llm_key(http)
            await create_flow(http, HELPER)
            flow_id = await create_flow(http, agent_flow(models.openai_url, "scripted-agent", "b"))
            run = await finished_run(http, await start_run(http, flow_id, {"question": question}))
    assert run["status"] == "failed", run
    assert run["error"]["code"] == "llm_budget_exceeded"
    assert run["error"]["node_id"] == "think"
    assert f"monthly token budget of {BUDGET} has too little left" in run["error"]["message"]
    assert len(models.state.requests) == 1  # the first step ran; the second was refused
    # The first step's tokens are counted with the failed run.
    assert run["usage"]["calls"] == 1


# The first step holds about 4096 (max_tokens) + 400 (tools) + 4,000 (the question) + the
# tools' definitions; the second about 20,000 more (the question in three arguments and two
# results, JSON-escaped).
BUDGET = 16_000
