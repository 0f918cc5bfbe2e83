"""Where a node's V8 expressions land in its resolved params: the slots a joined sandbox call
fills (``expressions.batch``), found without any JavaScript."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flowrunner.expressions import compile_value
from flowrunner.expressions.batch import (
    Slots,
    fill_slots,
    interpolated_codes,
    js_expressions,
    slot_places,
    whole_places,
)

PARAMS = {
    "url": "https://x.test/${input.id}",
    "n": "${Math.max(input.a, 1)}",
    "body": {"items": ["${input.list.map(f)}", "plain", "${input.id}"], "k": 1},
    "label": "n=${Math.max(input.a, 1)} ${input.s.trim()}",
}
SCOPE = {"input": {"id": 7, "a": 3, "list": [], "s": " x "}}


class NoJavaScript:
    async def evaluate_expression(self, code: str, scope: Mapping[str, Any]) -> Any:
        raise AssertionError(f"{code} went to JavaScript")


def test_whole_places_and_interpolated_codes_are_found_at_compile_time() -> None:
    resolver = compile_value(PARAMS, "node 'n'")
    assert whole_places(resolver) == (
        (("n",), "Math.max(input.a, 1)"),
        (("body", "items", 0), "input.list.map(f)"),
    )
    assert interpolated_codes(resolver) == {"Math.max(input.a, 1)", "input.s.trim()"}
    assert [e.code for e in js_expressions(resolver)] == [
        "Math.max(input.a, 1)",
        "input.list.map(f)",
        "input.s.trim()",
    ]


async def test_slots_stand_where_the_values_go_and_are_filled_there() -> None:
    resolver = compile_value(
        {"a": "${f(1)}", "b": {"c": ["${g()}", "${f(1)}"]}, "d": "${input.id}"}
    )
    codes = ["f(1)", "g()"]
    value = await resolver.aresolve(SCOPE, Slots(codes, NoJavaScript()))
    places = slot_places(value, whole_places(resolver))
    assert places == [(("a",), 0), (("b", "c", 0), 1), (("b", "c", 1), 0)]
    assert value == {"a": None, "b": {"c": [None, None]}, "d": 7}  # plain data to send
    fill_slots(value, places, [{"one": 1}, [2]])
    assert value == {"a": {"one": 1}, "b": {"c": [[2], {"one": 1}]}, "d": 7}


async def test_a_place_something_replaced_after_resolving_is_left_alone() -> None:
    resolver = compile_value({"a": "${f(1)}", "b": "${g()}"})
    value = await resolver.aresolve(SCOPE, Slots(["f(1)", "g()"], NoJavaScript()))
    value = {**value, "a": {"given": True}}  # an agent's tool argument over the params
    assert slot_places(value, whole_places(resolver)) == [(("b",), 1)]
    assert value == {"a": {"given": True}, "b": None}


async def test_params_that_are_one_whole_expression_have_no_place_to_fill() -> None:
    resolver = compile_value("${f(1)}")
    value = await resolver.aresolve(SCOPE, Slots(["f(1)"], NoJavaScript()))
    assert slot_places(value, whole_places(resolver)) is None
