"""The same scenarios against a real OpenAI-compatible model server, when one is configured:
``FLOWRUNNER_TEST_OPENAI_BASE_URL`` (e.g. ``http://localhost:11434/v1`` for Ollama),
``FLOWRUNNER_TEST_OPENAI_MODEL`` and optionally ``FLOWRUNNER_TEST_OPENAI_API_KEY``. A real
model's words are not scripted: these assert shapes, not text."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator

import pytest

from flowrunner.definition import compile_flow, load_flow
from flowrunner.scripting import Sandbox
from tests.llm_servers.script import PERSON_SCHEMA

URL = os.environ.get("FLOWRUNNER_TEST_OPENAI_BASE_URL", "")
MODEL = os.environ.get("FLOWRUNNER_TEST_OPENAI_MODEL", "")
SECRETS = {"KEY": os.environ.get("FLOWRUNNER_TEST_OPENAI_API_KEY", "none")}

pytestmark = pytest.mark.skipif(not (URL and MODEL), reason="no real model server configured")

HEAD = f"""      base_url: {URL}
      model: {MODEL}
      api_key: ${{secrets.KEY}}
      timeout: 300
"""


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    async with Sandbox(workers=1) as box:
        yield box


@pytest.mark.parametrize("stream", [False, True])
async def test_a_real_server_answers_a_prompt(stream: bool) -> None:
    text = (
        "metadata: {name: real}\nnodes:\n  ask:\n    type: llm\n    params:\n"
        + HEAD
        + "      prompt: Say hello in one word.\n      max_tokens: 32\n"
        + f"      stream: {str(stream).lower()}\n"
    )
    result = await compile_flow(load_flow(text)).run({}, secrets=SECRETS)
    assert isinstance(result.output["content"], str)
    assert result.output["content"]
    assert result.output["usage"]["total_tokens"] > 0


async def test_a_real_server_gives_structured_output() -> None:
    text = (
        "metadata: {name: real}\nnodes:\n  ask:\n    type: llm\n    params:\n"
        + HEAD
        + "      prompt: 'Ada Lovelace was 36. Give her name and age as JSON.'\n"
        + f"      output_schema: {json.dumps(PERSON_SCHEMA)}\n"
    )
    result = await compile_flow(load_flow(text)).run({}, secrets=SECRETS)
    person = result.output["structured_output"]
    assert isinstance(person["name"], str)
    assert isinstance(person["age"], int)


async def test_a_real_server_calls_a_tool_and_answers_with_its_result(sandbox: Sandbox) -> None:
    text = f"""metadata: {{name: real tools}}
nodes:
  ask:
    type: llm
    params:
{HEAD}      prompt: What is the secret word? Use the tool.
      tool_choice: required
      tools: [{{type: function, function: {{name: secret_word, description: Returns the secret word,
               parameters: {{type: object, properties: {{}}}}}}}}]
    next: {{tool_calls: route}}
  route: {{type: router, next: {{secret_word: secret_word}}}}
  secret_word:
    type: transform
    params: {{script: "return 'pineapple';"}}
    next: {{default: result}}
  result: {{type: format, next: {{default: answer}}}}
  answer:
    type: llm
    params:
{HEAD}      messages: ${{[...results.ask.messages, results.result]}}
"""
    result = await compile_flow(load_flow(text), scripts=sandbox).run({}, secrets=SECRETS)
    assert result.results["route"]["tool_name"] == "secret_word"
    assert isinstance(result.output["content"], str)
    assert result.output["content"]
