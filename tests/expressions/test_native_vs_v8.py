"""The native evaluator against V8 itself: generated expressions over generated data.

Every expression the native parser accepts is also evaluated by the real sandbox (mini-racer
in a worker process) with the same scope, and the two answers must be identical: same Python
value and same type (``1`` is not ``1.0``, ``0`` is not ``False``). An expression the
native side hands back (``NotNative``) must be one V8 evaluates or rejects; it is not
compared. The V8 side is batched: one function body per example evaluates its expressions
one after the other, each in its own ``try``, so ~15,000 expressions cost 300 round trips.
Expressions are written with random parentheses and spacing, so the text exercises
precedence, associativity and tokenising too (``a - -b`` and ``a--b``).
"""

from __future__ import annotations

import asyncio
import json
import math
import random
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flowrunner.expressions import SCOPE_NAMES
from flowrunner.expressions.jsnative import (
    NotNative,
    Program,
    compile_expression,
    compile_return,
)
from flowrunner.scripting import Sandbox

EXPRESSIONS_PER_EXAMPLE = 50
EXAMPLES = 300

# --- data -------------------------------------------------------------------------------------

NUMERIC_TEXT = [
    "", " ", "0", "-0", "12", " 12 ", "\t7\n", "1e3", "1E-7", ".5", "5.", "+5", "-5.5", "0x1f",
    "0X1F", "0o17", "0b101", "-0x1f", "1_000", "Infinity", "-Infinity", "+Infinity", "inf",
    "NaN", "1e400", "9007199254740993", "abc", "12abc", "\u00a012\u3000", "\u0661\u0662",
    "0.1", "00012", "1.2.3", "true", "null",
]  # fmt: skip

finite_floats = st.floats(allow_nan=False, allow_infinity=False)
numbers = st.one_of(
    st.integers(-1000, 1000),
    st.integers(-(2**64), 2**64),
    st.integers(10**20, 10**25),
    finite_floats,
    st.sampled_from(
        [0.0, -0.0, 0.1, 0.5, 1.5, 1e21, 1e-7, 1e-6, 5e-324, 2.0**53, 1.7976931348623157e308]
    ),
)
# No lone surrogates: they cannot be encoded to cross into V8 at all.
text = st.one_of(
    st.sampled_from(NUMERIC_TEXT),
    st.text(st.characters(exclude_categories=["Cs"]), max_size=6),
    st.text("ab01 é😀", max_size=4),
)
primitives = st.one_of(numbers, text, st.booleans(), st.none())
json_values = st.recursive(
    primitives,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.sampled_from("abk"), inner, max_size=3)
    ),
    max_leaves=6,
)
# ``input`` always has these keys (so paths usually find something); ``missing`` never exists.
INPUT_KEYS = ("a", "b", "c", "s", "t", "i", "o", "l")
scopes = st.fixed_dictionaries(
    {
        "input": st.fixed_dictionaries(
            {
                "a": numbers,
                "b": numbers,
                "c": primitives,
                "s": text,
                "t": primitives,
                "i": st.sampled_from([0, 1, 2, 5, -1, "1", "01", "length", 1.0, None]),
                "o": st.dictionaries(st.sampled_from(["k", "n", "0", "toString"]), json_values),
                "l": st.lists(primitives, max_size=3),
            }
        ),
        "results": st.fixed_dictionaries({"x": st.fixed_dictionaries({"y": primitives})}),
        "shared": st.dictionaries(st.sampled_from(["k", "n"]), primitives, max_size=2),
    }
)

# --- expressions ------------------------------------------------------------------------------

LITERALS = [
    "0", "1", "2", "-1", "2.5", ".5", "5.", "10", "1e21", "1e-7", "0x1F", "0b11", "0o7",
    "9007199254740993", "123456789012345680000", "0.1", "0.2", "3", "NaN", "Infinity",
    "undefined", "null", "true", "false", '""', "''", '"12"', "' 3 '", '"a"', '"b"', '"0x10"',
    "'-0'", '"1e3"', "'\\u00e9'", '"\\x41"', "'it\\'s'", '"\\t"', "'😀'",
]  # fmt: skip
PATHS = [
    "input.a", "input.b", "input.c", "input.s", "input.t", "input.i", "input.missing",
    "input.o.k", "input.o.n", "input.o[\"0\"]", "input.o[0]", "input.l[0]", "input.l[1]",
    "input.l.length", "input.s.length", "input[\"a\"]", "input['s']", "input?.missing?.x",
    "input.o?.k?.a", "input.o.missing", "results.x.y", "shared.k", "shared.n", "input.l[input.i]",
    "input.o.toString", "input.missing.x", "item", "input.l[-1]", "input.o", "input.l",
]  # fmt: skip
UNARY = ["-", "+", "!", "typeof "]
BINARY = [
    "+", "-", "*", "/", "%", "<", "<=", ">", ">=", "==", "!=", "===", "!==", "&&", "||", "??",
]  # fmt: skip
LEAVES = LITERALS + PATHS


def _wrap(rng: random.Random, code: str) -> str:
    return f"({code})" if rng.random() < 0.5 else code


def expression(rng: random.Random, depth: int = 3) -> str:
    """A random expression over the subset's grammar, written with random parentheses and
    spacing (so the text, not only the tree, is under test)."""
    if depth == 0 or rng.random() < 0.25:
        return rng.choice(LEAVES)
    shape = rng.random()
    if shape < 0.2:
        return rng.choice(UNARY) + _wrap(rng, expression(rng, depth - 1))
    if shape < 0.85:
        space = rng.choice([" ", " ", ""])
        left = _wrap(rng, expression(rng, depth - 1))
        right = _wrap(rng, expression(rng, depth - 1))
        return f"{left}{space}{rng.choice(BINARY)}{space}{right}"
    test, then, otherwise = (_wrap(rng, expression(rng, depth - 1)) for _ in range(3))
    return f"{test} ? {then} : {otherwise}"


# --- the comparison ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def v8() -> Iterator[tuple[asyncio.Runner, Sandbox]]:
    with asyncio.Runner() as runner:
        box = Sandbox(workers=1, timeout=10.0, memory_mb=64)
        runner.run(box.start())
        try:
            yield runner, box
        finally:
            runner.run(box.close())


def _batch(codes: list[tuple[str, bool]]) -> str:
    """One function body evaluating each expression in its own ``try``: [0, value] or [1, name].

    An expression not to be compared (``False``) still runs, so its syntax is checked, but
    its value is dropped: it may be a function, which is no JSON data.
    """
    lines = ["const out = [];"]
    for code, compare in codes:
        value = f"(0,\n{code}\n)" if compare else f"void (0,\n{code}\n)"
        lines.append(f"try {{ out.push([0, {value}]); }} catch (e) {{ out.push([1, e.name]); }}")
    lines.append("return out;")
    return "\n".join(lines)


def _same(a: Any, b: Any) -> bool:
    if type(a) is not type(b):
        return False
    if type(a) is float:
        return math.copysign(1.0, a) == math.copysign(1.0, b) and a == b
    return bool(a == b)


UNPARSED: Any = object()  # outside the subset: not even run in V8
LEFT_TO_V8: Any = object()  # parsed, but the values made it V8's: run, not compared


def _native(program: Program | None, scope: dict[str, Any]) -> Any:
    if program is None:
        return UNPARSED
    try:
        return program.evaluate(scope)
    except NotNative:
        return LEFT_TO_V8


def _compare_with_v8(
    v8: tuple[asyncio.Runner, Sandbox],
    scope: dict[str, Any],
    natives: list[tuple[str, Any]],
    same: Callable[[Any, Any], bool],
    shown: Callable[[str], str],
) -> int:
    """Run every parsed code of ``natives`` (code, native value) in V8 in one batch and
    assert each native value is V8's answer; how many were compared."""
    parsed = [(code, value) for code, value in natives if value is not UNPARSED]
    if not parsed:
        return 0
    runner, box = v8
    # Every accepted text must be valid JavaScript: a SyntaxError fails the whole batch here.
    batch = _batch([(code, value is not LEFT_TO_V8) for code, value in parsed])
    result = runner.run(box.run_function(batch, scope))
    compared = 0
    for (code, value), (threw, answer) in zip(parsed, result.value, strict=True):
        if value is LEFT_TO_V8:
            continue
        where = f"{shown(code)} with scope {json.dumps(scope, ensure_ascii=False)}"
        assert not threw, f"V8 threw {answer} but the native value is {value!r}: {where}"
        assert same(value, answer), f"native {value!r} != V8 {answer!r}: {where}"
        compared += 1
    return compared


COMPARED: list[int] = []


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(scope=scopes, seed=st.integers(0, 2**64))
def test_native_answers_are_v8s_answers(
    v8: tuple[asyncio.Runner, Sandbox], scope: dict[str, Any], seed: int
) -> None:
    # Expressions come from a seeded generator rather than Hypothesis draws: drawing each
    # token cost ~10x the whole V8 side. A failure still names the expression and the data.
    rng = random.Random(seed)
    codes = [expression(rng) for _ in range(EXPRESSIONS_PER_EXAMPLE)]
    natives = [(code, _native(compile_expression(code, SCOPE_NAMES), scope)) for code in codes]
    COMPARED.append(_compare_with_v8(v8, scope, natives, _same, repr))


def test_the_differential_test_compared_thousands_of_native_answers() -> None:
    # Runs after the property above (file order): it must not have passed vacuously.
    assert sum(COMPARED) >= 5000, sum(COMPARED)


# --- condition scripts: `return <expr>` ------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("return input.a > 1", True),
        ("  return input.a > 1;  \n", True),
        ("return(input.a + 1)", 3),
        ('return"x" + input.a', "x2"),
        ("return input.a >\n 1;", True),
    ],
)
def test_a_single_return_is_evaluated_natively(body: str, expected: Any) -> None:
    program = compile_return(body, SCOPE_NAMES)
    assert program is not None
    assert _same(program.evaluate({"input": {"a": 2}}), expected)


@pytest.mark.parametrize(
    "body",
    [
        "return\ninput.a",  # automatic semicolon insertion: returns undefined
        "returninput",
        "return input.a; return 1",
        "shared.n = 1; return input.a",
        "return input.a // why",
        "if (input.a) return 1; return 2",
        "return input.a;;",
        "return",
    ],
)
def test_other_function_bodies_are_left_to_v8(body: str) -> None:
    assert compile_return(body, SCOPE_NAMES) is None


# --- transform scripts: `return <object or array literal>` -----------------------------------

KEYS = ["n", "a", "total", '"x y"', "'é'", '""', '"-1"', '"1.5"', "null", "typeof"]


def literal(rng: random.Random, depth: int = 2) -> str:
    """A random object or array literal whose values are expressions or nested literals."""
    if depth == 0 or rng.random() < 0.3:
        return expression(rng, 2)
    if rng.random() < 0.65:
        keys = rng.sample(KEYS, rng.randint(0, 4))
        inner = ", ".join(f"{key}: {literal(rng, depth - 1)}" for key in keys)
        return "{" + inner + rng.choice(["", ","] if keys else [""]) + "}"
    items = [literal(rng, depth - 1) for _ in range(rng.randint(0, 3))]
    return "[" + ", ".join(items) + rng.choice(["", ","] if items else [""]) + "]"


def _same_json(a: Any, b: Any) -> bool:
    """Same value, same types all the way down, same key order."""
    if type(a) is not type(b):
        return False
    if type(a) is dict:
        return list(a) == list(b) and all(_same_json(a[k], b[k]) for k in a)
    if type(a) is list:
        return len(a) == len(b) and all(_same_json(x, y) for x, y in zip(a, b, strict=True))
    return _same(a, b)


LITERALS_COMPARED: list[int] = []


@settings(
    max_examples=EXAMPLES // 2,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(scope=scopes, seed=st.integers(0, 2**64))
def test_native_literals_are_v8s_literals(
    v8: tuple[asyncio.Runner, Sandbox], scope: dict[str, Any], seed: int
) -> None:
    rng = random.Random(seed)
    codes = [literal(rng) for _ in range(EXPRESSIONS_PER_EXAMPLE)]
    natives = [
        (code, _native(compile_return(f"return {code};", SCOPE_NAMES), scope)) for code in codes
    ]
    LITERALS_COMPARED.append(
        _compare_with_v8(v8, scope, natives, _same_json, lambda code: f"return {code};")
    )


def test_the_literal_test_compared_thousands_of_native_results() -> None:
    assert sum(LITERALS_COMPARED) >= 2000, sum(LITERALS_COMPARED)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("return {n: input.a + 1};", {"n": 3}),
        ("return {a: undefined, b: [undefined, 1 / 0, -0, 1.5]}", {"b": [None, None, 0, 1.5]}),
        ('return {"x y": {z: input.a}, l: []}', {"x y": {"z": 2}, "l": []}),
        ("return [input.a, 'a',]", [2, "a"]),
        ("return {}", {}),
    ],
)
def test_a_returned_literal_is_built_natively(body: str, expected: Any) -> None:
    program = compile_return(body, SCOPE_NAMES)
    assert program is not None
    assert _same_json(program.evaluate({"input": {"a": 2}}), expected)


@pytest.mark.parametrize(
    "body",
    [
        "return {1: input.a}",  # integer keys come first in V8's order
        "return {a: 1, a: 2}",
        "return {__proto__: null}",
        "return {input}",  # shorthand
        "return {[input.a]: 1}",
        "return {...input}",
        "return [1,,2]",
        "return [...input.l]",
        "return {a: 1}.a",
        "return input.a ? {a: 1} : {b: 2}",
        "return {a: 1,,}",
        "return {f() { return 1 }}",
    ],
)
def test_other_literals_are_left_to_v8(body: str) -> None:
    assert compile_return(body, SCOPE_NAMES) is None


def test_an_object_of_the_scope_inside_a_literal_is_left_to_v8() -> None:
    program = compile_return("return {o: input.o}", SCOPE_NAMES)
    assert program is not None
    with pytest.raises(NotNative):
        program.evaluate({"input": {"o": {"k": 1.0}}})
