"""JavaScript syntax errors found at load time, located in the YAML file (real sandbox)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from flowrunner.definition import validate_flow
from flowrunner.errors import Problem
from flowrunner.nodes import DefinedNode, DefinedNodeType
from flowrunner.plugins import builtin_registry
from flowrunner.scripting import Sandbox


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    async with Sandbox(workers=1) as box:
        yield box


class Script(DefinedNode):
    code_params = frozenset({"script"})


def errors(text: str, sandbox: Sandbox) -> list[Problem]:
    registry = builtin_registry()
    registry.register(DefinedNodeType("script", "test", Script, {"type": "object"}))
    problems = validate_flow(text, registry=registry, scripts=sandbox)
    return [p for p in problems if p.severity == "error"]


async def test_a_hook_syntax_error_points_into_the_block_scalar(sandbox: Sandbox) -> None:
    text = """\
metadata: {name: x}
nodes:
  a:
    type: log
    params: {message: hi}
    hooks:
      post: |
        let x = 1;
        return x +;
"""
    [problem] = errors(text, sandbox)
    assert (problem.path, problem.line, problem.column) == ("nodes.a.hooks.post", 9, 19)
    assert problem.message.startswith("JavaScript syntax error: SyntaxError")
    assert problem.hint == "at line 2, column 11 of the script"


async def test_a_code_param_on_one_line_is_located_after_its_quote(sandbox: Sandbox) -> None:
    text = 'metadata: {name: x}\nnodes:\n  a: {type: script, params: {script: "return (;"}}\n'
    [problem] = errors(text, sandbox)
    # The quote opens at column 38; the script's column 9 (the ';') is column 47.
    assert (problem.line, problem.column) == (3, 47)
    assert problem.hint == "at line 1, column 9 of the script"


async def test_expression_syntax_errors_are_located_inside_the_string(sandbox: Sandbox) -> None:
    text = """\
metadata: {name: x}
nodes:
  a: {type: log, params: {message: "sum: ${ input.a + }"}}
"""
    [problem] = errors(text, sandbox)
    assert problem.path == "nodes.a.params.message"
    # The string's text starts at column 37; the code at its column 9; the error just after
    # the '+', at column 10 of the code.
    assert (problem.line, problem.column) == (3, 54)
    assert problem.hint is not None
    assert "of the expression" in problem.hint


async def test_valid_javascript_and_plain_paths_pass(sandbox: Sandbox) -> None:
    text = """\
metadata: {name: x}
nodes:
  a:
    type: script
    params: {script: "return input.map(x => x * 2);", n: "${input.a.b[0]}",
             m: "${input.items.filter(i => i.ok).length}"}
    hooks: {prep: "return params;"}
"""
    assert errors(text, sandbox) == []
