from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from flowrunner.errors import ExpressionError, ScriptError
from flowrunner.expressions import Static, compile_template, compile_value, to_text

SCOPE: dict[str, Any] = {
    "input": {
        "count": 3,
        "items": [{"id": 1}, {"id": 2}],
        "name": "Ada",
        "ok": True,
        "none": None,
        "ratio": 2.0,
    },
    "shared": {"k": "v"},
    "results": {"fetch": {"body": [{"id": "first"}]}},
    "secrets": {"TOKEN": "s3cr3t"},
}


class PythonEvaluator:
    """Stands in for the JS sandbox: evaluates the few expressions these tests use."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    async def evaluate_expression(self, code: str, scope: Mapping[str, Any]) -> Any:
        self.calls.append(code)
        if code == "boom()":
            raise ScriptError("ReferenceError: boom is not defined", line=1, column=1)
        return eval(code, {}, {k: v for k, v in scope.items()})  # test-only stand-in


def test_a_whole_string_expression_keeps_its_type() -> None:
    assert compile_template("${input.count}").resolve(SCOPE) == 3
    assert compile_template("${input.items}").resolve(SCOPE) == [{"id": 1}, {"id": 2}]
    assert compile_template("${input.ok}").resolve(SCOPE) is True


def test_text_around_expressions_is_interpolated() -> None:
    template = compile_template("${input.name} has ${input.count} items: ${input.items}")
    assert template.resolve(SCOPE) == 'Ada has 3 items: [{"id":1},{"id":2}]'


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, ""),
        (True, "true"),
        (False, "false"),
        (2.0, "2"),
        (2.5, "2.5"),
        ("s", "s"),
        ({"a": [1, None]}, '{"a":[1,null]}'),
        (7, "7"),
    ],
)
def test_interpolated_values_render_like_javascript(value: object, text: str) -> None:
    assert to_text(value) == text


def test_native_paths_resolve_results_secrets_and_indexing() -> None:
    assert compile_template("${results.fetch.body[0].id}").resolve(SCOPE) == "first"
    assert compile_template("Bearer ${secrets.TOKEN}").resolve(SCOPE) == "Bearer s3cr3t"
    assert compile_template('${shared["k"]}').resolve(SCOPE) == "v"
    assert compile_template("${input.items[-1].id}").resolve(SCOPE) == 2


def test_a_missing_key_resolves_to_none_and_to_empty_text() -> None:
    assert compile_template("${input.nope.deeper}").resolve(SCOPE) is None
    assert compile_template("[${input.nope}]").resolve(SCOPE) == "[]"
    assert compile_template("${error.message}").resolve(SCOPE) is None


def test_strings_without_expressions_compile_to_static_values() -> None:
    assert isinstance(compile_template("plain"), Static)
    assert compile_template("$${x}").resolve(SCOPE) == "${x}"


def test_nested_params_are_resolved_recursively_and_code_params_are_not() -> None:
    params = {
        "url": "https://x.test/${input.name}",
        "headers": {"Authorization": "Bearer ${secrets.TOKEN}"},
        "list": ["${input.count}", {"deep": "${shared.k}"}, 5],
        "script": "return `${input.name}`",
    }
    resolved = compile_value(params, skip=frozenset({"script"})).resolve(SCOPE)
    assert resolved == {
        "url": "https://x.test/Ada",
        "headers": {"Authorization": "Bearer s3cr3t"},
        "list": [3, {"deep": "v"}, 5],
        "script": "return `${input.name}`",
    }


def test_static_values_are_copied_per_resolution() -> None:
    resolver = compile_value({"a": [1, 2]})
    first = resolver.resolve(SCOPE)
    first["a"].append(3)
    assert resolver.resolve(SCOPE) == {"a": [1, 2]}


def test_a_javascript_expression_without_an_evaluator_names_node_param_and_code() -> None:
    resolver = compile_value({"n": "${Math.max(input.count, 1)}"}, "node 'calc'")
    assert resolver.needs_js
    with pytest.raises(ExpressionError) as info:
        resolver.resolve(SCOPE)
    message = str(info.value)
    assert "node 'calc'" in message
    assert "param 'n'" in message
    assert "${Math.max(input.count, 1)}" in message
    assert "needs JavaScript" in message


def test_operators_on_primitives_resolve_without_an_evaluator() -> None:
    resolver = compile_value({"n": "${input.count + 1}", "t": "n=${input.ratio / 4}"})
    assert resolver.resolve(SCOPE) == {"n": 4, "t": "n=0.5"}


def test_a_native_expression_whose_values_need_javascript_says_so_without_an_evaluator() -> None:
    resolver = compile_value({"n": "${input.items + 1}"}, "node 'calc'")
    with pytest.raises(ExpressionError, match=r"\$\{input\.items \+ 1\} needs JavaScript"):
        resolver.resolve(SCOPE)


async def test_javascript_expressions_go_to_the_evaluator_and_native_ones_do_not() -> None:
    js = PythonEvaluator()
    resolver = compile_value(
        {"n": "${[input['count']][0] + 1}", "p": "${input.name}", "q": "${input.count * 2}"}
    )
    assert await resolver.aresolve(SCOPE, js) == {"n": 4, "p": "Ada", "q": 6}
    assert js.calls == ["[input['count']][0] + 1"]


async def test_a_native_expression_goes_to_the_evaluator_when_its_values_need_it() -> None:
    js = PythonEvaluator()
    # An array as an operand of + is V8's business (Array.prototype.join): the same code is
    # handed over (the stand-in evaluates it as Python, which is why `+` on lists is used).
    resolver = compile_value({"n": "${input['items'] + input['items']}"})
    assert await resolver.aresolve(SCOPE, js) == {"n": SCOPE["input"]["items"] * 2}
    assert js.calls == ["input['items'] + input['items']"]


async def test_evaluator_errors_become_expression_errors_naming_the_param() -> None:
    js = PythonEvaluator()
    resolver = compile_value({"x": "value: ${boom()}"}, "node 'n'")
    with pytest.raises(ExpressionError, match=r"node 'n', param 'x': expression \$\{boom\(\)\}"):
        await resolver.aresolve(SCOPE, js)


def test_syntax_errors_are_raised_at_compile_time_with_the_location() -> None:
    with pytest.raises(ExpressionError, match=r"node 'a', param 'b\.c': unterminated"):
        compile_value({"b": {"c": "${input.x"}}, "node 'a'")


def test_resolved_mappings_keep_the_written_key_order() -> None:
    resolved = compile_value({"a": "${input.count}", "b": "const", "c": "${input.name}"})
    assert list(resolved.resolve(SCOPE)) == ["a", "b", "c"]
