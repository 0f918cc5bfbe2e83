"""The YAML node base: JavaScript expressions and hooks through the real sandbox, and the
DefinedNode/DefinedNodeType path a plugin author takes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import pytest

from flowrunner.definition import compile_flow, load_flow
from flowrunner.engine import NodeEvent
from flowrunner.errors import ExpressionError, NodeFailed
from flowrunner.nodes import Call, DefinedNode, DefinedNodeType
from flowrunner.plugins import builtin_registry
from flowrunner.scripting import Sandbox, ScriptResult
from flowrunner.scripting.host import SyntaxKind


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    async with Sandbox(workers=1) as box:
        yield box


async def test_javascript_expressions_run_in_the_sandbox(sandbox: Sandbox) -> None:
    flow = compile_flow(
        load_flow("""\
metadata: {name: js}
nodes:
  calc:
    type: set
    params:
      values:
        total: "${input.items.reduce((a, b) => a + b, 0)}"
        label: "n=${input.items.length * 2} first=${input.items[0]}"
"""),
        scripts=sandbox,
    )
    result = await flow.run({"items": [1, 2, 3]})
    assert result.output == {"total": 6, "label": "n=6 first=1"}


class CountingHost:
    """The real sandbox, counting the round trips the nodes make to it."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.calls = 0

    async def evaluate_expression(self, code: str, scope: Mapping[str, Any]) -> Any:
        self.calls += 1
        return await self.sandbox.evaluate_expression(code, scope)

    async def evaluate_expressions(
        self, codes: Sequence[str], scope: Mapping[str, Any]
    ) -> list[Any]:
        self.calls += 1
        return await self.sandbox.evaluate_expressions(codes, scope)

    async def run_function(self, body: str, scope: Mapping[str, Any]) -> ScriptResult:
        self.calls += 1
        return await self.sandbox.run_function(body, scope)

    def check_syntax(self, code: str, *, kind: SyntaxKind) -> None:
        self.sandbox.check_syntax(code, kind=kind)


MANY = """\
metadata: {name: many}
nodes:
  calc:
    type: set
    params:
      values:
        sum: "${input.a + input.b}"
        label: "${Math.max(input.a, input.b)}-${input.items.map(x => x * 2).join('+')}"
        plain: "${input.a}"
        list: ["${JSON.stringify(input.items)}", "${input.c.toUpperCase()}"]
"""


async def test_a_nodes_expressions_take_one_sandbox_call(sandbox: Sandbox) -> None:
    host = CountingHost(sandbox)
    flow = compile_flow(load_flow(MANY), scripts=host)
    result = await flow.run({"a": 1, "b": 2, "c": "x", "items": [1, 2]})
    assert result.output == {"sum": 3, "label": "2-2+4", "plain": 1, "list": ["[1,2]", "X"]}
    assert host.calls == 1  # four V8 expressions in one call; the sum is native


NATIVE_TWO = """\
metadata: {name: native two}
nodes:
  calc: {type: set, params: {values: {a: "${input.a + 1}", b: "${input.b * 2}"}}}
"""


async def test_only_the_expressions_native_evaluation_declines_go_to_v8(sandbox: Sandbox) -> None:
    host = CountingHost(sandbox)
    flow = compile_flow(load_flow(NATIVE_TWO), scripts=host)
    assert (await flow.run({"a": 1, "b": 2})).output == {"a": 2, "b": 4}
    assert host.calls == 0
    # Object operands take both outside the native subset: V8 answers both, in one call.
    result = await flow.run({"a": {"x": 1}, "b": [3]})
    assert result.output == {"a": "[object Object]1", "b": 6}
    assert host.calls == 1


async def test_the_first_failing_expression_of_a_batch_is_the_one_named(sandbox: Sandbox) -> None:
    host = CountingHost(sandbox)
    flow = compile_flow(load_flow(MANY), scripts=host)
    with pytest.raises(NodeFailed) as info:
        # input.c.toUpperCase() throws; the rest would succeed
        await flow.run({"a": 1, "b": 2, "items": []})
    cause = info.value.cause
    assert isinstance(cause, ExpressionError)
    assert "node 'calc', param 'values.list[1]': expression ${input.c.toUpperCase()} failed" in str(
        cause
    )
    assert "TypeError" in str(cause)
    assert host.calls == 1


async def test_a_javascript_expression_without_a_sandbox_names_node_param_and_code() -> None:
    flow = compile_flow(
        load_flow("""\
metadata: {name: js}
nodes:
  calc: {type: set, params: {values: {total: "${Math.max(input.a, 1)}"}}}
""")
    )
    with pytest.raises(NodeFailed) as info:
        await flow.run({"a": 1})
    cause = info.value.cause
    assert isinstance(cause, ExpressionError)
    assert (
        "node 'calc', param 'values.total': expression ${Math.max(input.a, 1)} needs JavaScript"
        in str(cause)
    )


async def test_arithmetic_on_primitives_runs_without_a_sandbox() -> None:
    flow = compile_flow(
        load_flow("""\
metadata: {name: native}
nodes:
  calc:
    type: set
    params:
      values:
        total: "${input.a + 1}"
        half: "${input.a / 2}"
        label: "${input.a > 0 ? 'positive' : 'not positive'} (${input.name + '!'})"
""")
    )
    result = await flow.run({"a": 1, "name": "Ada"})
    assert result.output == {"total": 2, "half": 0.5, "label": "positive (Ada!)"}
    # The same expression with an object as the operand is JavaScript's ToPrimitive: V8's.
    with pytest.raises(NodeFailed, match=r"\$\{input\.a \+ 1\} needs JavaScript"):
        await flow.run({"a": {"b": 1}, "name": "Ada"})


async def test_a_native_expression_falls_back_to_the_sandbox_for_object_operands(
    sandbox: Sandbox,
) -> None:
    flow = compile_flow(
        load_flow("""\
metadata: {name: fallback}
nodes:
  calc: {type: set, params: {values: {total: "${input.a + 1}"}}}
"""),
        scripts=sandbox,
    )
    assert (await flow.run({"a": 1})).output == {"total": 2}
    assert (await flow.run({"a": {"b": 1}})).output == {"total": "[object Object]1"}
    assert (await flow.run({"a": [1, 2]})).output == {"total": "1,21"}


async def test_hooks_run_at_prep_exec_and_post(sandbox: Sandbox) -> None:
    events: list[NodeEvent] = []
    flow = compile_flow(
        load_flow("""\
metadata: {name: hooks}
nodes:
  a:
    type: set
    params: {values: {x: "${input.x}"}}
    hooks:
      prep: |
        console.log("prep sees " + params.values.x);
        return {values: {x: params.values.x * 10}};
      post: |
        shared.post_ran = true;
        return output.x > 5 ? "big" : "small";
    next: {big: b, small: c}
  b:
    type: log
    params: {message: unused}
    hooks:
      exec: "return {doubled: input.x * 2, at: params.message};"
  c: {type: log, params: {message: small}}
"""),
        scripts=sandbox,
    )
    result = await flow.run({"x": 3}, observer=events.append)
    assert result.results["a"] == {"x": 30}
    assert result.last_node_id == "b"
    assert result.output == {"doubled": 60, "at": "unused"}
    assert result.shared["post_ran"] is True
    assert [(e.node_id, e.message) for e in events if e.kind == "log"] == [("a", "prep sees 3")]


class Echo(DefinedNode):
    """A minimal plugin node: writes only ``work``."""

    async def work(self, call: Call) -> Any:
        call.action = call.params.get("route")
        return {"said": call.params["text"], "item": call.item}


ECHO = DefinedNodeType(
    "echo",
    "Echo a text.",
    Echo,
    {
        "type": "object",
        "required": ["text"],
        "properties": {"text": {"type": "string"}, "route": {"type": "string"}},
    },
)


async def test_a_plugin_node_only_writes_its_work() -> None:
    registry = builtin_registry()
    registry.register(ECHO)
    defn = load_flow(
        """\
metadata: {name: plugin}
nodes:
  e: {type: echo, params: {text: "hi ${input}", route: go}, next: {go: done}}
  done: {type: set, params: {values: {from_echo: "${input.said}"}}}
""",
        registry=registry,
    )
    result = await compile_flow(defn, registry=registry).run("Ada")
    assert result.results["e"] == {"said": "hi Ada", "item": None}
    assert result.output == {"from_echo": "hi Ada"}


async def test_a_batch_node_gets_one_call_per_item() -> None:
    registry = builtin_registry()
    registry.register(ECHO)
    defn = load_flow(
        """\
metadata: {name: plugin}
nodes:
  e:
    type: echo
    params: {text: "${index}/${item}"}
    batch: {items: [a, b, c], strategy: parallel}
""",
        registry=registry,
    )
    result = await compile_flow(defn, registry=registry).run()
    assert result.output == [
        {"said": "0/a", "item": "a"},
        {"said": "1/b", "item": "b"},
        {"said": "2/c", "item": "c"},
    ]
