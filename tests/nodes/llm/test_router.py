"""``router``: finds tool calls where the usual producers put them and routes on the name."""

from __future__ import annotations

from typing import Any

import pytest

from flowrunner.definition import compile_flow, load_flow
from flowrunner.errors import NodeFailed
from flowrunner.nodes.llm.router import find_tool_calls

CALL = {"id": "c1", "type": "function", "function": {"name": "search", "arguments": '{"q": 1}'}}

FLOW = """metadata: {{name: r}}
nodes:
  route:
    type: router
    params: {params}
    next: {{search: hit, no_tool: none}}
  hit: {{type: set, params: {{values: {{tool: "${{input.tool_name}}"}}}}}}
  none: {{type: set, params: {{values: {{tool: none}}}}}}
"""


async def route(run_input: Any, params: str = "{}") -> Any:
    return await compile_flow(load_flow(FLOW.format(params=params))).run(run_input)


@pytest.mark.parametrize(
    "run_input",
    [
        {"tool_calls": [CALL]},
        {"choices": [{"message": {"role": "assistant", "tool_calls": [CALL]}}]},
        {"llm_result": {"tool_calls": [CALL]}},
        {"message": {"tool_calls": [CALL]}},
        [CALL],
        CALL,
    ],
    ids=["tool_calls", "choices", "llm_result", "message", "list", "one"],
)
async def test_the_tool_call_is_found_and_its_name_is_the_action(run_input: Any) -> None:
    result = await route(run_input)
    assert result.output == {"tool": "search"}
    routed = result.results["route"]
    assert routed == {
        "tool_name": "search",
        "tool_call": CALL,
        "tool_params": {"q": 1},
        "tool_call_id": "c1",
        "original_input": run_input,
    }


async def test_no_tool_call_routes_no_tool() -> None:
    result = await route({"content": "just text", "tool_calls": []})
    assert result.output == {"tool": "none"}
    assert result.results["route"]["tool_name"] is None


async def test_without_a_no_tool_edge_it_follows_default() -> None:
    text = """metadata: {name: r}
nodes:
  route: {type: router, next: {default: end}}
  end: {type: set, params: {values: {ok: true}}}
"""
    result = await compile_flow(load_flow(text)).run({"content": "hi"})
    assert result.output == {"ok": True}


async def test_the_source_and_index_params_pick_the_call() -> None:
    other = {**CALL, "id": "c2", "function": {"name": "search", "arguments": "{}"}}
    result = await route({"x": [CALL, other]}, "{tool_calls: '${input.x}', index: 1}")
    assert result.results["route"]["tool_call_id"] == "c2"


async def test_arguments_that_are_not_json_fail_naming_the_tool() -> None:
    bad = {**CALL, "function": {"name": "search", "arguments": "{oops"}}
    with pytest.raises(NodeFailed, match="the arguments of tool call 'search' are not JSON"):
        await route({"tool_calls": [bad]})


def test_find_tool_calls_ignores_what_is_not_a_tool_call() -> None:
    assert find_tool_calls({"tool_calls": [{"x": 1}]}) == []
    assert find_tool_calls("text") == []
    assert find_tool_calls([1, 2]) == []
