"""Plain YAML scalars under the YAML 1.2 core schema, and how the original read them.

One rule for the whole file: the YAML 1.2 core schema. Booleans are ``true``/``false`` (also
``True``, ``FALSE``); ``null``, ``~`` and an empty value are null; integers are decimal
(``010`` is 10), ``0o17`` octal, ``0x1F`` hex; floats include ``1.5e3``, ``.inf`` and ``.nan``;
everything else is text (``yes``, ``off``, ``1_000``, ``0b101``, ``1:30``, dates).

The original (Go) flowrunner read flows with yaml.v2, which follows YAML 1.1: ``yes``/``no``/
``on``/``off``/``y``/``n`` were booleans, ``010`` was octal 8, and ``1_000`` or ``0b101`` were
numbers. ``original_value`` says what it would have read, so loading can warn where a value
now means something else.
"""

from __future__ import annotations

import math
import re
from typing import Any

__all__ = [
    "BOOL",
    "FLOAT",
    "INT",
    "NULL",
    "construct",
    "core_tag",
    "describe",
    "literal",
    "original_value",
    "same",
]

NULL = "tag:yaml.org,2002:null"
BOOL = "tag:yaml.org,2002:bool"
INT = "tag:yaml.org,2002:int"
FLOAT = "tag:yaml.org,2002:float"

# The YAML 1.2 core schema's resolution (spec 10.3.2), as (tag, pattern, first characters).
CORE: list[tuple[str, re.Pattern[str], str]] = [
    (NULL, re.compile(r"^(?:~|null|Null|NULL|)$"), "~nN"),
    (BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), "tTfF"),
    (INT, re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"), "-+0123456789"),
    (
        FLOAT,
        re.compile(
            r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
            r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
        ),
        "-+.0123456789",
    ),
]

_V2_TRUE = frozenset(["y", "Y", "yes", "Yes", "YES", "on", "On", "ON", "true", "True", "TRUE"])
_V2_FALSE = frozenset(["n", "N", "no", "No", "NO", "off", "Off", "OFF", "false", "False", "FALSE"])
_V2_SPECIAL = {
    **dict.fromkeys((".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF"), math.inf),
    **dict.fromkeys(("-.inf", "-.Inf", "-.INF"), -math.inf),
    **dict.fromkeys((".nan", ".NaN", ".NAN"), math.nan),
}
# Go's strconv.ParseInt(text, 0, 64) after yaml.v2 removed every underscore.
_GO_INT = re.compile(r"^[-+]?(?:0[bB][01]+|0[oO]?[0-7]+|0[xX][0-9a-fA-F]+|[1-9][0-9]*|0)$")
_V2_FLOAT = re.compile(r"^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?$")


def core_tag(text: str) -> str | None:
    """The tag the core schema gives a plain scalar, None for text."""
    for tag, pattern, _ in CORE:
        if pattern.match(text):
            return tag
    return None


def construct(tag: str, text: str) -> Any:
    """The value of a plain scalar that the core schema resolved to ``tag``."""
    if tag == NULL:
        return None
    if tag == BOOL:
        return text.lower() == "true"
    if tag == INT:
        if text.startswith("0o"):
            return int(text[2:], 8)
        if text.startswith("0x"):
            return int(text[2:], 16)
        return int(text, 10)
    lowered = text.lower()
    if lowered.endswith(".inf"):
        return -math.inf if text.startswith("-") else math.inf
    if lowered == ".nan":
        return math.nan
    return float(text)


def original_value(text: str) -> Any:
    """What yaml.v2 (the original) read a plain scalar as, for booleans and numbers; the text
    itself otherwise."""
    if text in _V2_TRUE:
        return True
    if text in _V2_FALSE:
        return False
    if text in _V2_SPECIAL:
        return _V2_SPECIAL[text]
    plain = text.replace("_", "")
    if _GO_INT.match(plain):
        sign = -1 if plain.startswith("-") else 1
        digits = plain.lstrip("+-").lower()
        if digits.startswith("0b"):
            return sign * int(digits[2:], 2)
        if digits.startswith("0x"):
            return sign * int(digits[2:], 16)
        if digits.startswith("0o"):
            return sign * int(digits[2:], 8)
        if len(digits) > 1 and digits.startswith("0"):
            return sign * int(digits[1:], 8)
        return sign * int(digits, 10)
    if _V2_FLOAT.match(plain):
        return float(plain)
    return text


def same(a: Any, b: Any) -> bool:
    """Equal and of the same kind (``True`` is not ``1``, ``8`` is ``8.0``); NaN equals NaN."""
    numbers = (int, float)
    if isinstance(a, bool) or isinstance(b, bool) or not isinstance(a, numbers):
        if type(a) is not type(b):
            return False
    elif not isinstance(b, numbers):
        return False
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    return bool(a == b)


def describe(value: Any) -> str:
    """A value as the reader of a warning thinks of it."""
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return f"the number {value:g}" if isinstance(value, float) else f"the number {value}"
    return f"the text '{value}'"


def literal(value: Any) -> str:
    """``value`` written as YAML 1.2 reads it back."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        if math.isnan(value):
            return ".nan"
        if math.isinf(value):
            return "-.inf" if value < 0 else ".inf"
    return str(value)
