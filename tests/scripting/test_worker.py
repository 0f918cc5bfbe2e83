"""The worker's translation of V8 compile errors into script positions."""

from __future__ import annotations

from flowrunner.scripting.worker import parse_syntax_error


def test_position_is_relative_to_the_users_code() -> None:
    message = "undefined:5: SyntaxError: Unexpected token ';'\n  let x = ;\n          ^\n"
    assert parse_syntax_error(message, "a;\n  let x = ;") == {
        "name": "SyntaxError",
        "message": "Unexpected token ';'",
        "line": 2,
        "column": 11,
    }


def test_error_past_the_end_points_after_the_last_character() -> None:
    message = "undefined:5: SyntaxError: Unexpected end of input\n);\n^\n"
    info = parse_syntax_error(message, "1 +")
    assert (info["line"], info["column"]) == (1, 4)


def test_unrecognised_message_keeps_its_first_line() -> None:
    info = parse_syntax_error("RangeError: Maximum call stack size exceeded\nmore", "x")
    assert info == {
        "name": "SyntaxError",
        "message": "RangeError: Maximum call stack size exceeded",
        "line": None,
        "column": None,
    }


def test_an_error_without_position_keeps_its_name_and_message() -> None:
    info = parse_syntax_error("<anonymous>:181: RangeError: Maximum call stack size exceeded", "")
    assert info == {
        "name": "RangeError",
        "message": "Maximum call stack size exceeded",
        "line": None,
        "column": None,
    }
