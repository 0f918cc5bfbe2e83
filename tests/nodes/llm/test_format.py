"""``format``: a tool's result as the tool message, by default or with a script."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from flowrunner.definition import compile_flow, load_flow
from flowrunner.errors import NodeFailed
from flowrunner.scripting import Sandbox

ROUTED = {
    "tool_calls": [
        {"id": "c9", "type": "function", "function": {"name": "calc", "arguments": "{}"}}
    ]
}


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    async with Sandbox(workers=1) as box:
        yield box


def flow(tool_output: str, params: str = "") -> str:
    return f"""metadata: {{name: f}}
nodes:
  route: {{type: router, next: {{calc: calc}}}}
  calc: {{type: set, params: {{values: {tool_output}}}, next: {{default: fmt}}}}
  fmt:
    type: format
{params}"""


async def run(text: str, sandbox: Sandbox | None = None, run_input: Any = None) -> Any:
    compiled = compile_flow(load_flow(text), scripts=sandbox)
    return (await compiled.run(run_input if run_input is not None else ROUTED)).output


async def test_the_tool_message_takes_its_id_and_name_from_the_router() -> None:
    assert await run(flow("{total: 3}")) == {
        "role": "tool",
        "tool_call_id": "c9",
        "name": "calc",
        "content": '{"total": 3}',
    }


async def test_params_override_id_name_and_content() -> None:
    params = "    params: {tool_call_id: x1, name: other, content: done}\n"
    assert await run(flow("{total: 3}", params)) == {
        "role": "tool",
        "tool_call_id": "x1",
        "name": "other",
        "content": "done",
    }


async def test_a_script_formats_the_content_or_the_whole_message(sandbox: Sandbox) -> None:
    head = "    params:\n      script: |\n        "
    content = head + 'return "total=" + input.total + " via " + tool_call.id;\n'
    out = await run(flow("{total: 3}", content), sandbox)
    assert out["content"] == "total=3 via c9"
    assert out["tool_call_id"] == "c9"
    whole = head + "return {role: 'tool', tool_call_id: 'z', content: 'x'};\n"
    assert await run(flow("{total: 3}", whole), sandbox) == {
        "role": "tool",
        "tool_call_id": "z",
        "content": "x",
    }


async def test_without_a_tool_call_id_it_fails_clearly() -> None:
    text = "metadata: {name: f}\nnodes:\n  fmt: {type: format}\n"
    with pytest.raises(NodeFailed, match="no tool_call_id: give the param, or run a router"):
        await run(text, run_input={"x": 1})
