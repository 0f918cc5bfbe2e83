"""PostgreSQL values as JSON: what a ``postgres`` node's rows hold.

json/jsonb arrive decoded already (the pools' codec). Numbers stay numbers (numeric as a
float when it is exact enough, else as text), times become ISO 8601 text, UUIDs and network
addresses their text, bytea base64, arrays lists, ranges and other types their text form.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
from collections.abc import Mapping
from typing import Any


def to_json_row(row: Mapping[str, Any]) -> dict[str, Any]:
    return {name: to_json(value) for name, value in row.items()}


def to_json(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, decimal.Decimal):
        as_float = float(value)
        # A numeric that a float would round (money with many digits) keeps its exact text.
        return as_float if decimal.Decimal(repr(as_float)) == value else str(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): to_json(v) for k, v in value.items()}
    return str(value)
