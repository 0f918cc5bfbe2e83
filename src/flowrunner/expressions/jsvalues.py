"""JavaScript's value semantics for the natively evaluated expressions (see ``jsnative``).

Values are represented as JavaScript sees them: every number is a Python ``float`` (a double,
with ``NaN``, the infinities and ``-0.0``), ``None`` is ``null``, ``UNDEFINED`` is
``undefined``, booleans and strings are themselves, and a scope's mappings and lists stand
for objects and arrays. Everything here follows the ECMAScript abstract operations
(ToNumber, ToString, IsLessThan, IsLooselyEqual, ...) for primitives. Where an object would
take part in an operation (ToPrimitive calls its methods, equality is identity), or where a
value could not have crossed into V8 at all, ``NotNative`` is raised and the caller hands the
expression to V8 unchanged: a native answer is given only when it is certain.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Final

__all__ = [
    "UNDEFINED",
    "NotNative",
    "add",
    "divide",
    "from_python",
    "get_property",
    "is_less",
    "loose_equals",
    "number_to_string",
    "remainder",
    "strict_equals",
    "to_number",
    "to_python",
    "to_string",
    "truthy",
    "type_of",
]


class NotNative(Exception):  # a signal to fall back to V8, not an error
    """The expression's answer depends on something evaluated natively only by V8."""


class _Undefined:
    __slots__ = ()

    def __repr__(self) -> str:
        return "undefined"


UNDEFINED: Final = _Undefined()

_NAN = math.nan
_INF = math.inf

# WhiteSpace and LineTerminator code points: what StringToNumber trims.
_JS_SPACE = (
    "\t\n\v\f\r \u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009"
    "\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
)
# StrDecimalLiteral (ASCII digits only: Python's float() would take other digits too).
_DECIMAL = re.compile(r"[+-]?(?:Infinity|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)")
_RADIX = re.compile(r"0(?:[xX](?P<x>[0-9a-fA-F]+)|[oO](?P<o>[0-7]+)|[bB](?P<b>[01]+))")

# What a lookup on an object may find on Object.prototype: a function or an accessor.
_OBJECT_PROTOTYPE = frozenset(
    {
        "constructor",
        "hasOwnProperty",
        "isPrototypeOf",
        "propertyIsEnumerable",
        "toLocaleString",
        "toString",
        "valueOf",
        "__proto__",
        "__defineGetter__",
        "__defineSetter__",
        "__lookupGetter__",
        "__lookupSetter__",
    }
)
# Numbers at or above this print in exponent form in JavaScript ("1e+21"), which JSON turns
# into a Python float; below it an integral double prints as digits (a Python int).
_EXPONENT_FORM = 1e21
# Below this an integral double prints as its exact digits; above it the shortest digits that
# round-trip are padded with zeros (2**60 prints as 1152921504606847000).
_EXACT = float(2**53)


def _int_to_float(value: int) -> float:
    try:
        return float(value)  # correctly rounded, as JSON.parse rounds the digits
    except OverflowError:  # JSON.parse gives ±Infinity; such data is not worth a native path
        raise NotNative from None


def from_python(value: Any) -> Any:
    """A scope value as JavaScript receives it through JSON; ``NotNative`` for what JSON
    would change (or refuse): non-finite floats, dates, decimals, sets, bytes..."""
    kind = type(value)
    if kind is str or kind is dict or kind is list or kind is bool or value is None:
        return value
    if kind is int:
        return _int_to_float(value)
    if kind is float:
        if value - value != 0.0:  # NaN or ±Infinity: encode_scope refuses them
            raise NotNative
        return value
    if kind is tuple or isinstance(value, Mapping):
        return value
    raise NotNative


def to_python(value: Any) -> Any:
    """A result as it comes back from V8 through JSON (``JSON.stringify`` then ``json.loads``)."""
    kind = type(value)
    if kind is float:
        if value - value != 0.0:  # NaN and ±Infinity stringify as null
            return None
        if value.is_integer() and -_EXPONENT_FORM < value < _EXPONENT_FORM:
            # Digits without a point or exponent: a Python int (-0 → 0).
            return int(value) if -_EXACT < value < _EXACT else int(number_to_string(value))
        return value
    if kind is str or kind is bool or value is None:
        return value
    if value is UNDEFINED:
        return None  # the reply leaves the value out
    raise NotNative  # an object or array: serialisation details are V8's


def truthy(value: Any) -> bool:
    kind = type(value)
    if kind is bool:
        return value  # type: ignore[no-any-return]
    if kind is float:
        return bool(value == value and value != 0.0)
    if kind is str:
        return bool(value != "")
    return not (value is None or value is UNDEFINED)  # objects and arrays are truthy


def type_of(value: Any) -> str:
    kind = type(value)
    if kind is float:
        return "number"
    if kind is str:
        return "string"
    if kind is bool:
        return "boolean"
    if value is UNDEFINED:
        return "undefined"
    return "object"  # null, objects, arrays (functions never get this far)


def string_to_number(text: str) -> float:
    text = text.strip(_JS_SPACE)
    if not text:
        return 0.0
    if _DECIMAL.fullmatch(text):
        return float(text.replace("Infinity", "inf"))
    m = _RADIX.fullmatch(text)
    if m is None:
        return _NAN
    digits, base = next((d, b) for d, b in zip(m.groups(), (16, 8, 2), strict=True) if d)
    try:
        return float(int(digits, base))
    except OverflowError:
        return _INF


def to_number(value: Any) -> float:
    kind = type(value)
    if kind is float:
        return value  # type: ignore[no-any-return]
    if kind is str:
        return string_to_number(value)
    if kind is bool:
        return 1.0 if value else 0.0
    if value is None:
        return 0.0
    if value is UNDEFINED:
        return _NAN
    raise NotNative  # ToPrimitive on an object


def number_to_string(x: float) -> str:
    """Number::toString(x) for radix 10: shortest round-trip digits, JavaScript's layout."""
    if x != x:
        return "NaN"
    if x == 0.0:
        return "0"
    if x in (_INF, -_INF):
        return "Infinity" if x > 0 else "-Infinity"
    if x.is_integer() and -_EXACT < x < _EXACT:
        return str(int(x))
    # repr gives the shortest digits that round-trip (the same digits V8 picks); only the
    # layout differs, so take the digits and the decimal exponent and lay them out again.
    _, digits, exponent = Decimal(repr(abs(x))).as_tuple()
    text = "".join(map(str, digits)).rstrip("0")
    k = len(text)
    n = len(digits) + int(exponent)  # the decimal point sits after n digits
    if k <= n <= 21:
        out = text + "0" * (n - k)
    elif 0 < n <= 21:
        out = f"{text[:n]}.{text[n:]}"
    elif -6 < n <= 0:
        out = "0." + "0" * -n + text
    else:
        e = n - 1
        mantissa = text if k == 1 else f"{text[0]}.{text[1:]}"
        out = f"{mantissa}e{'+' if e >= 0 else '-'}{abs(e)}"
    return "-" + out if x < 0 else out


def to_string(value: Any) -> str:
    kind = type(value)
    if kind is str:
        return value  # type: ignore[no-any-return]
    if kind is float:
        return number_to_string(value)
    if kind is bool:
        return "true" if value else "false"
    if value is None:
        return "null"
    if value is UNDEFINED:
        return "undefined"
    raise NotNative  # an object's toString / Array.prototype.join


def _is_object(value: Any) -> bool:
    kind = type(value)
    return not (kind is float or kind is str or kind is bool or value is None or value is UNDEFINED)


def add(a: Any, b: Any) -> Any:
    """``a + b``: concatenation when either side is a string, else numeric addition."""
    if _is_object(a) or _is_object(b):
        raise NotNative
    if type(a) is str or type(b) is str:
        return to_string(a) + to_string(b)
    return to_number(a) + to_number(b)


def divide(x: float, y: float) -> float:
    if y == 0.0:  # IEEE division, which Python refuses: signed infinities, 0/0 is NaN
        if x != x or x == 0.0:
            return _NAN
        return _INF if (math.copysign(1.0, x) > 0) == (math.copysign(1.0, y) > 0) else -_INF
    return x / y


def remainder(x: float, y: float) -> float:
    """``x % y``: the truncating remainder (the sign of ``x``), C's fmod."""
    if y == 0.0 or x in (_INF, -_INF) or x != x or y != y:
        return _NAN
    if y in (_INF, -_INF):
        return x
    return math.fmod(x, y)


def _utf16(text: str) -> bytes:
    return text.encode("utf-16-be", "surrogatepass")


def is_less(a: Any, b: Any) -> bool | None:
    """IsLessThan(a, b): ``None`` stands for undefined (a NaN was involved)."""
    if type(a) is str and type(b) is str:
        if a.isascii() and b.isascii():
            return a < b
        return _utf16(a) < _utf16(b)  # JavaScript compares UTF-16 code units
    x, y = to_number(a), to_number(b)
    if x != x or y != y:
        return None
    return x < y


def strict_equals(a: Any, b: Any) -> bool:
    kind = type(a)
    if kind is not type(b):
        return False
    if kind is float or kind is str or kind is bool or a is None or a is UNDEFINED:
        return a == b  # type: ignore[no-any-return]  # NaN != NaN, -0 == 0, as in JavaScript
    raise NotNative  # object identity after JSON parsing is V8's to tell


def loose_equals(a: Any, b: Any) -> bool:
    """IsLooselyEqual(a, b) for primitives, and for an object against null/undefined."""
    if a is None or a is UNDEFINED:
        return b is None or b is UNDEFINED  # an object is never == null
    if b is None or b is UNDEFINED:
        return False
    if _is_object(a) or _is_object(b):
        raise NotNative
    if type(a) is type(b):
        return strict_equals(a, b)
    # number, string and boolean, of two different types: compare as numbers.
    return to_number(a) == to_number(b)


def _utf16_length(text: str) -> int:
    if text.isascii():
        return len(text)
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


def _array_index(key: str) -> int | None:
    """The index a canonical array-index key names ("0", "12"; not "01", "-1", "1.0")."""
    if key.isdigit() and key.isascii() and (key == "0" or key[0] != "0"):
        return int(key)
    return None


def get_property(value: Any, key: str) -> Any:
    """``value[key]`` for a property key (already a string), or ``NotNative``."""
    kind = type(value)
    if kind is dict or (kind is not list and kind is not tuple and isinstance(value, Mapping)):
        if key in value:
            return from_python(value[key])
        if key in _OBJECT_PROTOTYPE or any(type(k) is not str for k in value):
            raise NotNative  # an inherited method, or a key JSON would have turned into text
        return UNDEFINED
    if kind is list or kind is tuple:
        if key == "length":
            return float(len(value))
        index = _array_index(key)
        if index is None:
            raise NotNative  # Array.prototype's methods, or an odd property name
        return from_python(value[index]) if index < len(value) else UNDEFINED
    if kind is str and key == "length":
        return float(_utf16_length(value))
    # null/undefined (a TypeError), a primitive's prototype, a string's code units...
    raise NotNative
