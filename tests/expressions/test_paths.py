from __future__ import annotations

from types import MappingProxyType

import pytest

from flowrunner.expressions import SCOPE_NAMES, parse_path, resolve_path


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("input", ("input", ())),
        ("input.a.b", ("input", ("a", "b"))),
        ("results.fetch.body[0].id", ("results", ("fetch", "body", 0, "id"))),
        ('shared["k"]', ("shared", ("k",))),
        ("shared['a b'].c", ("shared", ("a b", "c"))),
        ("input.items[-1]", ("input", ("items", -1))),
        ("input?.a?.[2]", ("input", ("a", 2))),
        (" input . a ", ("input", ("a",))),
        ('input["q\\"uote"]', ("input", ('q"uote',))),
    ],
)
def test_plain_paths_are_parsed_natively(code: str, expected: tuple[str, tuple[object]]) -> None:
    assert parse_path(code, SCOPE_NAMES) == expected


@pytest.mark.parametrize(
    "code",
    [
        "input.a + 1",
        "input.a()",
        "Math.max(1, 2)",
        "foo.bar",
        "input[0 + 1]",
        "'text'",
        "input.a || 'x'",
        "input[idx]",
        "input.",
        "1",
    ],
)
def test_anything_else_is_not_a_native_path(code: str) -> None:
    assert parse_path(code, SCOPE_NAMES) is None


DATA = {"a": {"b": [10, {"id": "x"}]}, "s": "hey", "m": MappingProxyType({"0": "zero"})}


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        (("a", "b", 1, "id"), "x"),
        (("a", "b", -1, "id"), "x"),
        (("a", "b", "length"), 2),
        (("s", "length"), 3),
        (("s", 0), "h"),
        (("m", 0), "zero"),
        (("a", "b", "1", "id"), "x"),
        (("a", "missing", "deeper"), None),
        (("a", "b", 5), None),
        (("a", "b", -3), None),
        (("s", "x"), None),
        (("a", "b", 0, "id"), None),
    ],
)
def test_resolution_follows_js_optional_chaining(
    keys: tuple[str | int, ...], expected: object
) -> None:
    assert resolve_path(DATA, keys) == expected
