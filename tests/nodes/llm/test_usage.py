"""What a call holds against the monthly budget: an upper bound of what it can use, so a
budget is never passed. The hold counts the prompt's UTF-8 bytes (at least one per token),
the tools and images a provider adds tokens for, the output schema, and ``max_tokens``; under
a budget, a call that sets no ``max_tokens`` is sent with the one held for (the scripted
OpenAI- and Anthropic-compatible servers record what the SDKs sent)."""

from __future__ import annotations

import json

import pytest

from flowrunner.executions.llm_usage import RunUsage
from flowrunner.nodes.llm.types import ChatRequest
from flowrunner.nodes.llm.usage import (
    DEFAULT_COMPLETION_HOLD,
    IMAGE_ALLOWANCE,
    TOOLS_ALLOWANCE,
    USAGE_METER,
    estimate,
)
from flowrunner.storage.memory import MemoryStore
from tests.llm_servers.server import ModelServer
from tests.nodes.llm.conftest import base_url
from tests.nodes.llm.test_llm import PROVIDERS, flow, run

WORD = {"role": "user", "content": "héllo"}  # 6 UTF-8 bytes of text


def size(*values: object) -> int:
    return len(json.dumps(list(values), ensure_ascii=False).encode())


def test_the_hold_counts_prompt_bytes_and_the_reply_bound() -> None:
    request = ChatRequest(model="m", messages=[WORD], max_tokens=50)
    assert estimate(request) == size(WORD, None) + 50
    unbounded = ChatRequest(model="m", messages=[WORD])
    assert estimate(unbounded) == size(WORD, None) + DEFAULT_COMPLETION_HOLD


def test_tools_images_and_an_output_schema_add_to_the_hold() -> None:
    tool = {"type": "function", "function": {"name": "t", "parameters": {"type": "object"}}}
    image = {
        "role": "user",
        "content": [
            {"type": "text", "text": "what is it?"},
            {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
        ],
    }
    schema = {"type": "object"}
    request = ChatRequest(
        model="m", messages=[image], tools=[tool], output_schema=schema, max_tokens=1
    )
    assert estimate(request) == size(image, tool, schema) + TOOLS_ALLOWANCE + IMAGE_ALLOWANCE + 1


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_under_a_budget_a_call_without_max_tokens_is_sent_with_the_held_bound(
    models: ModelServer, provider: str
) -> None:
    text = flow(provider, base_url(models, provider), "scripted-echo")
    store = MemoryStore()
    await store.connect()
    try:
        await run(text, scoped={USAGE_METER: RunUsage(store.kv, "a", budget=None)})
        budgeted = RunUsage(store.kv, "b", budget=10**6)
        await run(text, scoped={USAGE_METER: budgeted})
        bounded = RunUsage(store.kv, "c", budget=10**6)
        with_bound = text.replace("prompt:", "max_tokens: 7\n      prompt:")
        await run(with_bound, scoped={USAGE_METER: bounded})
        assert await budgeted.month_total() == budgeted.snapshot()["total_tokens"] > 0
    finally:
        await store.close()
    first, second, third = (r.get("max_tokens") for r in models.state.requests)
    # Anthropic's API requires max_tokens: the provider sends its default without a budget.
    assert first == (None if provider == "openai" else 1024)
    assert second == DEFAULT_COMPLETION_HOLD
    assert third == 7  # a call's own bound is kept
