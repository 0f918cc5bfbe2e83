"""A node's expressions and then its prep hook in one request (``evaluate_then_run``): each
part as if alone, the hook only after every expression succeeded."""

from __future__ import annotations

from typing import Any

import pytest

from flowrunner.errors import ScriptError, ScriptResourceError
from flowrunner.scripting import Sandbox, ScriptResult

pytestmark = pytest.mark.asyncio(loop_scope="module")

SCOPE: dict[str, Any] = {
    "input": {"n": 2, "items": [1, 2]},
    "shared": {"k": "v"},
    "params": {"raw": "${input.n + 1}"},
}


async def test_the_hook_sees_params_with_each_value_at_its_places(sandbox: Sandbox) -> None:
    before = (await sandbox.worker_stats())["evaluations"]
    joined = await sandbox.evaluate_then_run(
        ["input.n + 1", "input.items.map(x => x * 2)"],
        SCOPE,
        "params.b.push(9); shared.seen = params; return params.raw === undefined;",
        {"a": None, "b": None, "c": [None], "raw": None, "__proto__": None},
        [(("a",), 0), (("b",), 1), (("c", 0), 1), (("raw",), 0), (("__proto__",), 0)],
    )
    assert (await sandbox.worker_stats())["evaluations"] - before == 1
    assert joined.values == [3, [2, 4]]
    assert isinstance(joined.hook, ScriptResult)
    assert joined.hook.value is False
    assert joined.hook.shared == {
        "k": "v",
        # one place's array is its own: the push shows in `b` only; `__proto__` is a key
        "seen": {"a": 3, "b": [2, 4, 9], "c": [[2, 4]], "raw": 3, "__proto__": 3},
    }


async def test_each_part_sees_the_scope_as_if_alone(sandbox: Sandbox) -> None:
    joined = await sandbox.evaluate_then_run(
        ["(input.n = 99, input.items.push(3), input.n)", "input.items.length"],
        SCOPE,
        "return [input.n, input.items.length, params.raw];",
        {"raw": None},
        [(("raw",), 1)],
    )
    assert joined.values == [99, 2]
    assert isinstance(joined.hook, ScriptResult)
    assert joined.hook.value == [2, 2, 2]
    assert SCOPE["input"] == {"n": 2, "items": [1, 2]}


async def test_the_hook_gets_params_when_the_scope_has_none(sandbox: Sandbox) -> None:
    joined = await sandbox.evaluate_then_run(
        ["(0, input.n)"], {"input": {"n": 4}}, "return params;", {"n": None}, [(("n",), 0)]
    )
    assert isinstance(joined.hook, ScriptResult)
    assert joined.hook.value == {"n": 4}


async def test_a_hook_that_does_not_name_shared_leaves_it_as_it_was(sandbox: Sandbox) -> None:
    joined = await sandbox.evaluate_then_run(
        ["shared.k + '!'"], SCOPE, "return params.v;", {"v": None}, [(("v",), 0)]
    )
    assert isinstance(joined.hook, ScriptResult)
    assert joined.hook.value == "v!"
    assert joined.hook.shared is SCOPE["shared"]  # as run_function gives it back


async def test_an_expression_that_fails_keeps_the_hook_from_running(sandbox: Sandbox) -> None:
    joined = await sandbox.evaluate_then_run(
        ["input.n", "input.missing.deep", "Promise.reject(new Error('no'))"],
        SCOPE,
        "console.log('ran'); shared.ran = true;",
        {"a": None},
        [(("a",), 0)],
    )
    assert joined.values[0] == 2
    assert isinstance(joined.values[1], ScriptError)
    assert joined.values[1].context["error_type"] == "TypeError"
    assert isinstance(joined.values[2], ScriptError)
    assert "Error: no" in str(joined.values[2])
    assert joined.hook is None


async def test_a_hook_error_carries_its_position_and_console_lines(sandbox: Sandbox) -> None:
    body = "console.log('first', params.n);\nnull.x;"
    joined = await sandbox.evaluate_then_run(
        ["input.n * 5"], SCOPE, body, {"n": None}, [(("n",), 0)]
    )
    with pytest.raises(ScriptError) as alone:
        await sandbox.run_function(body, {**SCOPE, "params": {"n": 10}})
    hook = joined.hook
    assert isinstance(hook, ScriptError)
    assert joined.values == [10]
    assert str(hook) == str(alone.value)
    assert hook.context == alone.value.context
    assert hook.context["logs"] == [{"level": "info", "message": "first 10"}]
    assert (hook.context["line"], hook.context["column"]) == (2, 6)


async def test_code_that_does_not_compile_fails_the_call_as_a_whole(sandbox: Sandbox) -> None:
    with pytest.raises(ScriptError):
        await sandbox.evaluate_then_run(["input.n +* 2"], SCOPE, "return 1;", None, ())
    with pytest.raises(ScriptError):
        await sandbox.evaluate_then_run(["input.n"], SCOPE, "return (;", None, ())
    assert await sandbox.evaluate_expression("input.n", SCOPE) == 2


async def test_a_reply_over_the_size_limit_fails_the_call_as_a_whole() -> None:
    # Each part alone is under the limit; together they are over it.
    async with Sandbox(workers=1, max_result_bytes=3000) as small:
        scope = {"input": {"text": "x" * 1800}}
        assert await small.evaluate_expression("input.text + ''", scope) == "x" * 1800
        with pytest.raises(ScriptResourceError):
            await small.evaluate_then_run(
                ["input.text + ''"], scope, "return input.text + '!';", None, ()
            )
        assert (await small.run_function("return input.text + '!';", scope)).value is not None


async def test_places_that_do_not_fit_the_params_fail_the_call_as_a_whole(
    sandbox: Sandbox,
) -> None:
    with pytest.raises(ScriptResourceError, match="the joined call failed"):
        await sandbox.evaluate_then_run(
            ["(0, input.n)"], SCOPE, "return params;", {"a": None}, [(("b", "c"), 0)]
        )
    assert await sandbox.evaluate_expression("input.n", SCOPE) == 2
