"""Splitting a string into literal text and ``${...}`` expressions.

The scanner understands just enough JavaScript to find the closing brace of an expression:
nested braces (object literals, arrow bodies) and string literals (a ``}`` inside quotes does
not close the expression). ``$${`` is an escape for a literal ``${``.
"""

from __future__ import annotations

from dataclasses import dataclass

from flowrunner.errors import ExpressionError

_QUOTES = frozenset("'\"`")


@dataclass(frozen=True, slots=True)
class Segment:
    """One ``${...}`` found in a template: its code and where it starts in the text."""

    code: str
    offset: int


class TemplateSyntaxError(ExpressionError):
    """A template is malformed; ``offset`` is the index in the text where the problem is."""

    def __init__(self, message: str, *, text: str, offset: int) -> None:
        super().__init__(message, expression=text, offset=offset)
        self.text = text
        self.offset = offset


def has_expression(text: str) -> bool:
    """Cheap pre-check used to skip parsing of plain strings (the overwhelming majority)."""
    return "${" in text


def split_template(text: str) -> list[str | Segment]:
    """The literal pieces and expressions of ``text``, in order (adjacent literals merged)."""
    parts: list[str | Segment] = []
    literal: list[str] = []
    i = 0
    n = len(text)
    while i < n:
        start = text.find("$", i)
        if start < 0:
            literal.append(text[i:])
            break
        literal.append(text[i:start])
        if text.startswith("$${", start):
            literal.append("${")
            i = start + 3
            continue
        if not text.startswith("${", start):
            literal.append("$")
            i = start + 1
            continue
        end = _find_close(text, start + 2)
        code = text[start + 2 : end].strip()
        if not code:
            raise TemplateSyntaxError("empty expression '${}'", text=text, offset=start)
        if literal:
            joined = "".join(literal)
            if joined:
                parts.append(joined)
            literal = []
        parts.append(Segment(code, start))
        i = end + 1
    if literal:
        joined = "".join(literal)
        if joined:
            parts.append(joined)
    return parts


def _find_close(text: str, i: int) -> int:
    """Index of the ``}`` closing the expression whose code starts at ``i``."""
    depth = 0
    n = len(text)
    open_at = i - 2
    while i < n:
        ch = text[i]
        if ch in _QUOTES:
            i = _skip_string(text, i, open_at)
            continue
        if ch == "{":
            depth += 1
        elif ch == "}":
            if depth == 0:
                return i
            depth -= 1
        i += 1
    raise TemplateSyntaxError(
        "unterminated expression: '${' without a closing '}'", text=text, offset=open_at
    )


def _skip_string(text: str, i: int, open_at: int) -> int:
    """Index just past the string literal starting at ``i`` (backslash escapes honoured)."""
    quote = text[i]
    i += 1
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == "\\":
            i += 2
            continue
        if ch == quote:
            return i + 1
        i += 1
    raise TemplateSyntaxError(
        f"unterminated string literal ({quote}) inside '${{...}}'", text=text, offset=open_at
    )
