"""Several expressions in one round trip: values in order, each as if evaluated alone."""

from __future__ import annotations

import pytest

from flowrunner.errors import ScriptError
from flowrunner.scripting import Sandbox

pytestmark = pytest.mark.asyncio(loop_scope="module")

SCOPE = {"input": {"n": 2, "items": [1, 2, 3]}, "shared": {"k": "v"}}


async def test_values_come_back_in_order_from_one_evaluation(sandbox: Sandbox) -> None:
    before = (await sandbox.worker_stats())["evaluations"]
    values = await sandbox.evaluate_expressions(
        ["input.n + 1", "shared.k + '!'", "input.items.map(x => x * 2)", "null"], SCOPE
    )
    after = (await sandbox.worker_stats())["evaluations"]
    assert values == [3, "v!", [2, 4, 6], None]
    assert after - before == 1


async def test_each_expression_sees_the_scope_as_if_alone(sandbox: Sandbox) -> None:
    values = await sandbox.evaluate_expressions(
        ["(input.n = 99, input.items.push(4), input.n)", "input.n", "input.items.length"],
        SCOPE,
    )
    assert values == [99, 2, 3]
    assert SCOPE["input"] == {"n": 2, "items": [1, 2, 3]}


async def test_a_failing_expression_gives_its_error_in_place(sandbox: Sandbox) -> None:
    values = await sandbox.evaluate_expressions(
        ["input.n", "input.missing.deep", "() => 1", "input.n * 3"], SCOPE
    )
    assert values[0] == 2
    assert values[3] == 6
    assert isinstance(values[1], ScriptError)
    assert values[1].context["error_type"] == "TypeError"
    assert isinstance(values[2], ScriptError)
    assert values[2].context["error_type"] == "ResultError"


async def test_promises_settle_into_their_slots(sandbox: Sandbox) -> None:
    values = await sandbox.evaluate_expressions(
        ["Promise.resolve(input.n)", "new Promise(() => {})", "Promise.reject(new Error('no'))"],
        SCOPE,
    )
    assert values[0] == 2
    assert isinstance(values[1], ScriptError)
    assert "never settled" in str(values[1])
    assert isinstance(values[2], ScriptError)
    assert "Error: no" in str(values[2])


async def test_a_syntax_error_names_its_own_expression_line_and_column(sandbox: Sandbox) -> None:
    values = await sandbox.evaluate_expressions(["input.n", "input.n +* 2"], SCOPE)
    assert values[0] == 2
    error = values[1]
    assert isinstance(error, ScriptError)
    assert error.context["error_type"] == "SyntaxError"
    assert (error.context["line"], error.context["column"]) == (1, 10)


async def test_one_expression_is_one_ordinary_evaluation(sandbox: Sandbox) -> None:
    assert await sandbox.evaluate_expressions(["input.n * 5"], SCOPE) == [10]
    assert await sandbox.evaluate_expressions([], SCOPE) == []
