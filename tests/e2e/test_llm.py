"""The ``llm`` node through a real ``flowrunner serve``: streamed text arrives over the
WebSocket while the node still works (and only the final message is stored), a run is
cancelled mid-stream, usage is reported with the run, the monthly budget refuses calls, and
the API key never shows in events, logs, outputs or the database file."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from flowrunner.nodes.llm.types import ChatRequest
from flowrunner.nodes.llm.usage import DEFAULT_COMPLETION_HOLD, estimate
from tests.conftest import HANG_GUARD
from tests.e2e.models import API_KEY, keep_llm_key
from tests.e2e.server import Server, create_flow, finished_run, start_run, stored_events
from tests.llm_servers.script import STREAM_WORDS
from tests.llm_servers.server import ModelServer

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def llm_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with Server(
        tmp_path_factory.mktemp("llm"),
        http_allow_private="true",
        llm_monthly_token_budget=1_000_000,
    ) as running:
        yield running


@pytest.fixture
async def client(llm_server: Server) -> AsyncIterator[httpx.AsyncClient]:
    async with llm_server.client() as http:
        await keep_llm_key(http)
        yield http


def flow(provider: str, url: str, model: str, name: str) -> str:
    return f"""metadata: {{name: {name}}}
nodes:
  ask:
    type: llm
    params:
      provider: {provider}
      model: {model}
      base_url: {url}
      api_key: ${{secrets.LLM_KEY}}
      prompt: Tell me a story.
      stream: true
"""


def url_of(models: ModelServer, provider: str) -> str:
    return models.openai_url if provider == "openai" else models.anthropic_url


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
async def test_streamed_text_arrives_over_the_websocket_before_the_node_finishes(
    llm_server: Server, client: httpx.AsyncClient, models: ModelServer, provider: str
) -> None:
    flow_id = await create_flow(
        client, flow(provider, url_of(models, provider), "scripted-stream-gate", f"s-{provider}")
    )
    token = client.headers["Authorization"].removeprefix("Bearer ")
    async with websockets.connect(f"{llm_server.ws_url}?token={token}") as ws:
        await ws.send(json.dumps({"type": "subscribe", "flow_id": flow_id}))
        assert json.loads(await ws.recv())["type"] == "subscribed"
        execution_id = await start_run(client, flow_id, {})
        seen: list[dict[str, Any]] = []
        async with asyncio.timeout(HANG_GUARD):
            while not any(m["type"] == "stream" for m in seen):
                seen.append(json.loads(await ws.recv()))
            # The model is still held mid-reply: the node cannot have finished.
            assert not any(m["data"].get("state") == "finished" for m in seen)
            models.state.gate.set()
            while not any(m["data"].get("status") == "completed" for m in seen):
                seen.append(json.loads(await ws.recv()))
    streamed = "".join(m["data"]["delta"] for m in seen if m["type"] == "stream")
    story = "".join(STREAM_WORDS)
    assert streamed == story
    assert all(m["data"]["node_id"] == "ask" for m in seen if m["type"] == "stream")
    finished = next(m for m in seen if m["data"].get("state") == "finished")
    assert finished["data"]["output"]["content"] == story
    # The history keeps the final message, not the tokens.
    run = await finished_run(client, execution_id)
    assert run["output"]["content"] == story
    stored = await stored_events(client, execution_id)
    assert stored
    assert not any(e["type"] == "stream" for e in stored)


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
async def test_a_run_is_canceled_during_a_streaming_call(
    client: httpx.AsyncClient, models: ModelServer, provider: str
) -> None:
    flow_id = await create_flow(
        client, flow(provider, url_of(models, provider), "scripted-stream-gate", f"c-{provider}")
    )
    execution_id = await start_run(client, flow_id, {})
    async with asyncio.timeout(HANG_GUARD):
        while not models.state.streaming.is_set():  # noqa: ASYNC110 - a thread's Event
            await asyncio.sleep(0.02)
    response = await client.post(f"/api/v1/executions/{execution_id}/cancel")
    assert response.status_code == 200, response.text
    run = await finished_run(client, execution_id)
    assert run["status"] == "canceled"
    async with asyncio.timeout(HANG_GUARD):  # the call was cut: the server saw the client go
        while not models.state.disconnected.is_set():  # noqa: ASYNC110 - a thread's Event
            await asyncio.sleep(0.02)


async def test_usage_is_reported_with_the_run_and_the_key_never_leaks(
    llm_server: Server, client: httpx.AsyncClient, models: ModelServer
) -> None:
    text = flow("openai", models.openai_url, "scripted-echo", "usage").replace(
        "      stream: true\n", "      stream: true\n    next: {default: again}\n"
    ) + (
        "  again:\n    type: llm\n    params: {provider: anthropic, model: scripted-echo, "
        f"base_url: '{models.anthropic_url}', api_key: '${{secrets.LLM_KEY}}', prompt: Hi}}\n"
    )
    flow_id = await create_flow(client, text)
    execution_id = await start_run(client, flow_id, {})
    run = await finished_run(client, execution_id)
    assert run["status"] == "completed", run
    assert models.state.keys == [API_KEY, API_KEY]
    events = await stored_events(client, execution_id)
    final = events[-1]
    assert final["type"] == "complete"
    usage = final["data"]["usage"]
    assert usage["calls"] == 2
    assert set(usage["nodes"]) == {"ask", "again"}
    assert usage["total_tokens"] == sum(n["total_tokens"] for n in usage["nodes"].values())
    assert usage["total_tokens"] > 0
    assert (await client.get(f"/api/v1/executions/{execution_id}/usage")).json() == usage
    # The key: in no answer, no event, no log line, no byte of the database.
    answers = json.dumps([run, events])
    assert API_KEY not in answers
    for path in sorted(llm_server.data_dir.iterdir()):
        if path.is_file():
            assert API_KEY.encode() not in path.read_bytes(), path.name


async def test_a_call_that_does_not_fit_in_the_monthly_token_budget_is_refused(
    tmp_path: Path, models: ModelServer
) -> None:
    # A budget of exactly what the call holds (its prompt's bytes plus the max_tokens it is
    # sent with): the first run's call fits; the second does not fit beside what it used.
    hold = estimate(ChatRequest("m", [{"role": "user", "content": "Tell me a story."}]))
    with Server(tmp_path, http_allow_private="true", llm_monthly_token_budget=hold) as server:
        async with server.client() as http:
            await keep_llm_key(http)
            text = flow("openai", models.openai_url, "scripted-echo", "budget")
            flow_id = await create_flow(http, text)
            first = await finished_run(http, await start_run(http, flow_id, {}))
            assert first["status"] == "completed"
            second = await finished_run(http, await start_run(http, flow_id, {}))
    assert second["status"] == "failed"
    assert second["error"]["code"] == "llm_budget_exceeded"
    used = first["usage"]["total_tokens"]
    assert (
        f"monthly token budget of {hold} has too little left for this call ({used} tokens "
        f"used or held in" in second["error"]["message"]
    )
    assert len(models.state.requests) == 1
    assert models.state.requests[0]["max_tokens"] == DEFAULT_COMPLETION_HOLD
