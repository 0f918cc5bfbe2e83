"""JSON values to DynamoDB attribute values and back, for the ``dynamodb`` node.

Plain JSON in the flow (``{"pk": "a", "n": 1.5}``), typed attributes on the wire
(``{"pk": {"S": "a"}, "n": {"N": "1.5"}}``). Numbers go through Decimal (DynamoDB's number
type); whole numbers come back as ints. An empty string set or a float that is not finite
cannot be stored: a clear ValueError.
"""

from __future__ import annotations

import decimal
from collections.abc import Mapping
from typing import Any

_CONTEXT = decimal.Context(prec=38)


def to_attr(value: Any) -> dict[str, Any]:
    """One JSON value as a DynamoDB attribute value."""
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int | float):
        number = _CONTEXT.create_decimal(repr(value))
        if not number.is_finite():
            raise ValueError(f"{value!r} cannot be stored in DynamoDB (not a finite number)")
        return {"N": str(number)}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, list | tuple):
        return {"L": [to_attr(v) for v in value]}
    if isinstance(value, Mapping):
        return {"M": to_item(value)}
    raise ValueError(f"{type(value).__name__} cannot be stored in DynamoDB")


def to_item(values: Mapping[str, Any]) -> dict[str, Any]:
    return {str(k): to_attr(v) for k, v in values.items()}


def from_attr(attr: Mapping[str, Any]) -> Any:
    """One DynamoDB attribute value as JSON (sets become lists, binary base64 text)."""
    (kind, raw), *_ = attr.items()
    if kind == "NULL":
        return None
    if kind in ("S", "BOOL"):
        return raw
    if kind == "N":
        return _number(raw)
    if kind == "L":
        return [from_attr(v) for v in raw]
    if kind == "M":
        return from_item(raw)
    if kind == "SS":
        return list(raw)
    if kind == "NS":
        return [_number(n) for n in raw]
    if kind in ("B", "BS"):
        import base64

        blobs = raw if kind == "BS" else [raw]
        texts = [base64.b64encode(b).decode("ascii") for b in blobs]
        return texts if kind == "BS" else texts[0]
    return raw


def from_item(item: Mapping[str, Any]) -> dict[str, Any]:
    return {k: from_attr(v) for k, v in item.items()}


def _number(text: str) -> int | float:
    number = decimal.Decimal(text)
    return (
        int(number) if number == number.to_integral_value() and "." not in text else float(number)
    )
