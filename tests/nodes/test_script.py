"""``transform`` and ``condition`` nodes, run end to end through load_flow + compile_flow."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import pytest
import pytest_asyncio

from flowrunner.definition import compile_flow, load_flow
from flowrunner.engine import NodeEvent, RunResult
from flowrunner.errors import DefinitionError, NodeFailed, ScriptError, ScriptTimeout
from flowrunner.scripting import Sandbox
from flowrunner.scripting.host import ScriptResult, SyntaxKind

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def sandbox() -> AsyncIterator[Sandbox]:
    async with Sandbox(workers=1) as box:
        yield box


async def run(
    sandbox: Sandbox,
    text: str,
    run_input: Any = None,
    *,
    events: list[NodeEvent] | None = None,
    **kwargs: Any,
) -> RunResult:
    definition = load_flow(text, scripts=sandbox)
    flow = compile_flow(definition, scripts=sandbox)
    return await flow.run(
        run_input, observer=events.append if events is not None else None, **kwargs
    )


TRANSFORM = """\
metadata: {name: t}
nodes:
  first:
    type: set
    params: {values: {seen: 1}}
    next: {default: shape}
  shape:
    type: transform
    params:
      threshold: ${shared.min}
      script: |
        console.log(`checking ${shared.orders.length} orders`);
        shared.count = (shared.count || 0) + 1;
        return {
          input,
          large: shared.orders.filter(o => o.total > params.threshold).map(o => o.id),
          first: results.first,
          token: secrets.TOKEN,
          run: execution.id,
          hasScriptParam: 'script' in params,
        };
"""


async def test_transform_output_is_the_return_value_with_every_name_in_scope(
    sandbox: Sandbox,
) -> None:
    events: list[NodeEvent] = []
    orders = [{"id": 1, "total": 50}, {"id": 2, "total": 150}]
    result = await run(
        sandbox,
        TRANSFORM,
        {"orders": orders, "min": 100},
        events=events,
        secrets={"TOKEN": "t0k"},
        execution={"id": "ex-7"},
    )
    assert result.output == {
        "input": {"seen": 1},
        "large": [2],
        "first": {"seen": 1},
        "token": "t0k",
        "run": "ex-7",
        "hasScriptParam": False,
    }
    assert result.shared["count"] == 1
    assert result.shared["seen"] == 1
    logs = [(e.node_id, e.level, e.message) for e in events if e.kind == "log"]
    assert logs == [("shape", "info", "checking 2 orders")]


async def test_transform_script_is_never_interpolated(sandbox: Sandbox) -> None:
    text = """\
metadata: {name: t}
nodes:
  t:
    type: transform
    params: {script: "const name = input.who; return `hi ${name}`;"}
"""
    assert (await run(sandbox, text, {"who": "ada"})).output == "hi ada"


async def test_transform_error_fails_the_node_with_the_script_position(sandbox: Sandbox) -> None:
    text = """\
metadata: {name: t}
nodes:
  t:
    type: transform
    params:
      script: |
        const x = 1;
        return input.missing.field;
"""
    with pytest.raises(NodeFailed) as info:
        await run(sandbox, text, {})
    cause = info.value.cause
    assert isinstance(cause, ScriptError)
    assert (cause.line, cause.column) == (2, 22)


async def test_transform_error_follows_the_error_edge(sandbox: Sandbox) -> None:
    text = """\
metadata: {name: t}
nodes:
  t:
    type: transform
    params: {script: "throw new Error('bad data')"}
    next: {error: recover}
  recover:
    type: transform
    params: {script: "return {recovered: error.message, from: error.node_id}"}
"""
    result = await run(sandbox, text, {})
    assert result.output["from"] == "t"
    assert "bad data" in result.output["recovered"]


async def test_transform_times_out_at_the_sandbox_limit() -> None:
    async with Sandbox(workers=1, timeout=0.2) as box:
        text = "metadata: {name: t}\nnodes:\n  t: {type: transform, params: {script: 'for(;;);'}}\n"
        with pytest.raises(NodeFailed) as info:
            await run(box, text)
    assert isinstance(info.value.cause, ScriptTimeout)


async def test_transform_runs_per_item_in_a_batch(sandbox: Sandbox) -> None:
    text = """\
metadata: {name: t}
nodes:
  t:
    type: transform
    batch: {items: "${input.values}"}
    params: {script: "return item * 10 + index"}
"""
    assert (await run(sandbox, text, {"values": [1, 2, 3]})).output == [10, 21, 32]


CONDITION = """\
metadata: {name: c}
nodes:
  check:
    type: condition
    params:
      condition_script: {script}
    next: {true: yes, false: no, big: huge}
  yes: {type: transform, params: {script: "return 'went yes'"}}
  no: {type: transform, params: {script: "return 'went no'"}}
  huge: {type: transform, params: {script: "return 'went huge'"}}
"""


@pytest.mark.parametrize(
    ("script", "value", "expected"),
    [
        ("return input > 0", 5, "went yes"),
        ("return input > 0", -5, "went no"),
        ("return input > 100 ? 'big' : input > 0", 500, "went huge"),
    ],
)
async def test_condition_routes_by_boolean_or_action_name(
    sandbox: Sandbox, script: str, value: int, expected: str
) -> None:
    text = CONDITION.replace("{script}", f'"{script}"')
    assert (await run(sandbox, text, value)).output == expected


class CountingHost:
    """The real sandbox, counting the function bodies sent to it."""

    def __init__(self, inner: Sandbox) -> None:
        self.inner = inner
        self.bodies: list[str] = []
        self.checked: list[str] = []

    async def evaluate_expression(self, code: str, scope: Mapping[str, Any]) -> Any:
        return await self.inner.evaluate_expression(code, scope)

    async def evaluate_expressions(
        self, codes: Sequence[str], scope: Mapping[str, Any]
    ) -> list[Any]:
        return await self.inner.evaluate_expressions(codes, scope)

    async def run_function(self, body: str, scope: Mapping[str, Any]) -> ScriptResult:
        self.bodies.append(body)
        return await self.inner.run_function(body, scope)

    def check_syntax(self, code: str, *, kind: SyntaxKind) -> None:
        self.checked.append(code)
        self.inner.check_syntax(code, kind=kind)


NATIVE_CONDITION = """\
metadata: {name: c}
nodes:
  check:
    type: condition
    params: {condition_script: "return input.n > params.limit ? 'big' : input.n > 0;", limit: 9}
    next: {true: yes, false: no, big: huge}
  yes: {type: set, params: {values: {went: "yes ${input.n}"}}}
  no: {type: set, params: {values: {went: "no ${input.n}"}}}
  huge: {type: set, params: {values: {went: "huge ${input.n}"}}}
"""


@pytest.mark.parametrize(
    ("value", "expected"), [(5, "yes 5"), (-5, "no -5"), (50, "huge 50"), ("12", "huge 12")]
)
async def test_a_condition_that_returns_one_native_expression_skips_the_sandbox(
    sandbox: Sandbox, value: Any, expected: str
) -> None:
    host = CountingHost(sandbox)
    flow = compile_flow(load_flow(NATIVE_CONDITION, scripts=host), scripts=host)
    assert (await flow.run({"n": value})).output == {"went": expected}
    assert host.bodies == []
    assert host.checked == []  # valid JavaScript by construction: no syntax check at load


async def test_a_flow_with_expressions_outside_the_subset_is_still_syntax_checked(
    sandbox: Sandbox,
) -> None:
    host = CountingHost(sandbox)
    text = NATIVE_CONDITION.replace("yes ${input.n}", "yes ${input.n ** 2}")
    flow = compile_flow(load_flow(text, scripts=host), scripts=host)
    assert host.checked == ["input.n ** 2"]
    assert (await flow.run({"n": 3})).output == {"went": "yes 9"}


async def test_a_native_condition_goes_to_the_sandbox_when_its_values_need_it(
    sandbox: Sandbox,
) -> None:
    host = CountingHost(sandbox)
    flow = compile_flow(load_flow(NATIVE_CONDITION, scripts=host), scripts=host)
    # An array compared with a number is ToPrimitive (Array.prototype.join): V8's answer.
    assert (await flow.run({"n": [50]})).output == {"went": "huge [50]"}
    assert host.bodies == ["return input.n > params.limit ? 'big' : input.n > 0;"]


async def test_a_condition_naming_shared_runs_in_the_sandbox(sandbox: Sandbox) -> None:
    host = CountingHost(sandbox)
    text = NATIVE_CONDITION.replace("input.n > 0;", "shared !== null;")
    flow = compile_flow(load_flow(text, scripts=host), scripts=host)
    assert (await flow.run({"n": 5})).output == {"went": "yes 5"}
    assert len(host.bodies) == 1


async def test_condition_passes_its_input_through_and_can_write_shared(sandbox: Sandbox) -> None:
    text = """\
metadata: {name: c}
nodes:
  check:
    type: condition
    params: {condition_script: "shared.checked = true; return 'done'"}
"""
    result = await run(sandbox, text, {"a": 1})
    assert result.output == {"a": 1}
    assert result.action == "done"
    assert result.shared["checked"] is True


async def test_condition_returning_something_else_fails_the_node(sandbox: Sandbox) -> None:
    text = (
        "metadata: {name: c}\nnodes:\n"
        "  c: {type: condition, params: {condition_script: 'return 3'}}\n"
    )
    with pytest.raises(NodeFailed, match="must return an action name or a boolean, got int"):
        await run(sandbox, text)


async def test_script_syntax_error_is_a_problem_at_its_yaml_position(sandbox: Sandbox) -> None:
    text = """\
metadata: {name: t}
nodes:
  t:
    type: transform
    params:
      script: |
        const a = 1;
        return a +* 2;
"""
    with pytest.raises(DefinitionError) as info:
        load_flow(text, scripts=sandbox)
    [problem] = info.value.errors
    assert (problem.line, problem.column) == (8, 19)
    assert "JavaScript syntax error" in problem.message


async def test_script_nodes_need_a_sandbox() -> None:
    text = "metadata: {name: t}\nnodes:\n  t: {type: transform, params: {script: 'return 1'}}\n"
    with pytest.raises(DefinitionError, match="need the JavaScript sandbox"):
        compile_flow(load_flow(text))


async def test_script_param_is_required(sandbox: Sandbox) -> None:
    with pytest.raises(DefinitionError, match="script"):
        load_flow("metadata: {name: t}\nnodes:\n  t: {type: transform, params: {}}\n")
