from __future__ import annotations

import pytest

from flowrunner.errors import ExpressionError
from flowrunner.expressions import Segment, TemplateSyntaxError, split_template


def test_plain_text_is_one_literal() -> None:
    assert split_template("hello $5 and {braces}") == ["hello $5 and {braces}"]


def test_expressions_are_split_from_literal_text_with_offsets() -> None:
    assert split_template("a ${input.x} b ${ shared.y }") == [
        "a ",
        Segment("input.x", 2),
        " b ",
        Segment("shared.y", 15),
    ]


def test_braces_and_quotes_inside_an_expression_do_not_close_it() -> None:
    parts = split_template("${ {a: '}'}.a + \"}\" + `${x}` }")
    assert parts == [Segment("{a: '}'}.a + \"}\" + `${x}`", 0)]


def test_double_dollar_escapes_a_literal_placeholder() -> None:
    assert split_template("cost: $${price} ${input.p}") == [
        "cost: ${price} ",
        Segment("input.p", 16),
    ]


@pytest.mark.parametrize(
    ("text", "message", "offset"),
    [
        ("x ${input.a", "unterminated expression", 2),
        ("${}", "empty expression", 0),
        ("ok ${   }", "empty expression", 3),
        ("${ 'abc }", "unterminated string literal", 0),
    ],
)
def test_malformed_templates_raise_with_the_offset(text: str, message: str, offset: int) -> None:
    with pytest.raises(TemplateSyntaxError, match=message) as info:
        split_template(text)
    assert info.value.offset == offset
    assert isinstance(info.value, ExpressionError)
