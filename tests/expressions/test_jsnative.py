"""The native JavaScript subset: what it accepts, what it answers, when it hands over to V8.

The answers below are V8's (checked against the sandbox when written; the differential test
in ``test_native_vs_v8.py`` keeps checking generated ones).
"""

from __future__ import annotations

from typing import Any

import pytest

from flowrunner.expressions import SCOPE_NAMES, NotNative, compile_expression

SCOPE: dict[str, Any] = {
    "input": {
        "n": 5,
        "f": 0.1,
        "s": "12",
        "e": "",
        "z": -0.0,
        "b": True,
        "nul": None,
        "big": 2**53 + 1,
        "huge": 10**25,
        "arr": [1, 2, {"x": 3}],
        "obj": {"a": 1},
        "u": "héllo😀",
    }
}


def evaluate(code: str) -> Any:
    program = compile_expression(code, SCOPE_NAMES)
    assert program is not None, f"{code!r} is outside the native subset"
    return program.evaluate(SCOPE)


def same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("input.n + 1", 6),
        ("1/2", 0.5),
        ("4/2", 2),
        ("0.1+0.2", 0.30000000000000004),
        ("9007199254740992 + 1", 9007199254740992),
        ("123456789012345680000", 123456789012345680000),
        ("1152921504606846976", 1152921504606847000),
        ("1e21", 1e21),
        ("input.huge", 1e25),
        ("input.big", 9007199254740992),
        ("1/0", None),
        ("0/0", None),
        ("-0", 0),
        ("input.z + ''", "0"),
        ("input.s + 1", "121"),
        ("input.s - 1", 11),
        ("input.missing + 1", None),
        ("input.nul + 1", 1),
        ("'5' == 5", True),
        ("null == 0", False),
        ("null == undefined", True),
        ("null === undefined", False),
        ("true == '1'", True),
        ("'' == 0", True),
        ("NaN == NaN", False),
        ("' \\t\\n 12 ' * 1", 12),
        ("'0x1f' * 1", 31),
        ("'1_000' * 1", None),
        ("'-Infinity' - 0", None),
        ("'10' < '9'", True),
        ("input.n > '4'", True),
        ("undefined <= 1", False),
        ("null >= 0", True),
        ("input.u.length", 7),
        ("input.arr.length", 3),
        ("input.arr[1] + input.arr[2].x", 5),
        ("input.arr[5]", None),
        ("input.obj && 1", 1),
        ("!input.obj", False),
        ("input.obj == null", False),
        ("input.arr != undefined", True),
        ("input.obj === null", False),
        ("input.e || 'default'", "default"),
        ("input.e ?? 'default'", ""),
        ("input.missing?.x.y", None),
        ("typeof input.missing", "undefined"),
        ("typeof null", "object"),
        ("-5 % 3", -2),
        ("5.5 % 2", 1.5),
        ("0.0000001 + ''", "1e-7"),
        ("1e21 + ''", "1e+21"),
        ("5e-324 + ''", "5e-324"),
        ("'x' + input.n + 1", "x51"),
        ("input.n + 1 + 'x'", "6x"),
        ("input.n + +1", 6),
        ("'3' - - '2'", 5),
        ("3 > 2 > 1", False),
        ("input.n?.5:1", 0.5),  # a conditional, not optional chaining
        ("'\\u0041\\x41\\u{1F600}'", "AA😀"),
        ("input['n'] * 2", 10),
        ("input.arr[input.arr[0]]", 2),
    ],
)
def test_native_answers_are_v8s(code: str, expected: Any) -> None:
    assert same(evaluate(code), expected)


@pytest.mark.parametrize(
    "code",
    [
        "input.n++1",  # `++`: maximal munch, as V8 tokenises it
        "input.n--1",
        "010",  # legacy octal: a SyntaxError in strict mode
        "08",
        "1_000",
        "1n",
        "3in input",
        "2 ** 3",
        "input.n = 1",
        "x => 1",
        "Math.max(1, 2)",
        "input.s.toUpperCase()",
        "[1, 2]",
        "({a: 1})",
        "`t`",
        "/re/.source",
        "input.n, 2",
        "input.a ?? input.b || 1",  # `??` mixed with `||` without parentheses
        "input.a || input.b ?? 1",
        "input.a && input.b ?? 1",
        "input.n // comment",
        "input.n /* comment */",
        "'a' in input",
        "void 0",
        "new Date()",
        "this",
        "'\\01'",  # octal escapes: a SyntaxError in strict mode
        "'\\8'",
        "'\\ud800'",  # a surrogate half
        "'line\nbreak'",
        "input.\\u0061",
        "inpüt",
        "",
        "(",
        "input.n +",
        "input.n ? 1",
    ],
)
def test_text_outside_the_subset_is_left_to_v8(code: str) -> None:
    assert compile_expression(code, SCOPE_NAMES) is None


@pytest.mark.parametrize(
    "code",
    [
        "input.obj + 1",  # ToPrimitive of an object
        "input.arr < 2",
        "input.obj == input.obj",  # identity after V8's JSON parse
        "input.obj || 1",  # an object as the result: V8 serialises it
        "input.missing.x",  # a TypeError, V8's to raise
        "input.nul.x",
        "input.obj.toString",  # inherited from Object.prototype
        "input.arr.map",
        "input.arr[-1]",
        "input.s[0]",  # a string's code unit
        "input.n.toFixed",
        "item + 1",  # not in this scope: a ReferenceError
        "+".join(["1"] * 5000),  # nests deeper than Python's stack
    ],
)
def test_values_outside_the_subset_hand_the_evaluation_to_v8(code: str) -> None:
    program = compile_expression(code, SCOPE_NAMES)
    assert program is not None
    with pytest.raises(NotNative):
        program.evaluate(SCOPE)


@pytest.mark.parametrize(
    "value",
    [float("nan"), float("inf"), 10**400, {1: "int key"}, b"bytes", (1, object())],
)
def test_data_v8_would_receive_differently_is_left_to_v8(value: Any) -> None:
    program = compile_expression("input.v.x + 1 || input.v + 1", SCOPE_NAMES)
    assert program is not None
    with pytest.raises(NotNative):
        program.evaluate({"input": {"v": value}})
