"""The ``query`` language of the key-value nodes (``store``, and the KV operations of
``postgres`` and ``dynamodb``): a filter with MongoDB-like operators, a sort, a limit.

``filter`` maps a field (``status``, or a dotted path ``customer.country``) to a plain value
(equality) or to operators: ``$eq $ne $gt $gte $lt $lte $in $contains``. Every field must
match. Values that are not objects never match a non-empty filter. Comparing values of
different kinds (a number with a string) is false, never an error. ``sort`` is a field,
``-field`` for descending, or a list of them; entries missing the field sort last.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

OPERATORS = ("$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$contains")

_MISSING = object()


class QueryError(ValueError):
    """A malformed filter or sort: the message says which part."""


def check_filter(where: Any) -> None:
    """Raise QueryError when ``where`` is not a filter this module understands."""
    if where is None:
        return
    if not isinstance(where, Mapping):
        raise QueryError(f"filter must be a mapping of field to value, got {_kind(where)}")
    for field, test in where.items():
        if isinstance(test, Mapping) and any(str(k).startswith("$") for k in test):
            for op, operand in test.items():
                if op not in OPERATORS:
                    raise QueryError(
                        f"filter.{field}: unknown operator {op!r} (use {', '.join(OPERATORS)})"
                    )
                if op == "$in" and not isinstance(operand, list):
                    raise QueryError(f"filter.{field}.$in must be a list")


def matches(value: Any, where: Mapping[str, Any] | None) -> bool:
    """True when ``value`` passes every field test of ``where``."""
    if not where:
        return True
    if not isinstance(value, Mapping):
        return False
    return all(_passes(field_of(value, field), test) for field, test in where.items())


def field_of(value: Any, path: str) -> Any:
    """The field at a dotted path, or ``_MISSING``."""
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return _MISSING
        value = value[part]
    return value


def _passes(found: Any, test: Any) -> bool:
    if isinstance(test, Mapping) and any(str(k).startswith("$") for k in test):
        return all(_OPS[op](found, operand) for op, operand in test.items())
    return found is not _MISSING and _equal(found, test)


def _equal(a: Any, b: Any) -> bool:
    # JSON true is not 1: Python says it is.
    if isinstance(a, bool) != isinstance(b, bool):
        return False
    return bool(a == b)


def _ordered(a: Any, b: Any, compare: Callable[[Any, Any], bool]) -> bool:
    if a is _MISSING or a is None or b is None:
        return False
    if isinstance(a, bool) or isinstance(b, bool):
        return False
    numbers = isinstance(a, int | float) and isinstance(b, int | float)
    if numbers or (isinstance(a, str) and isinstance(b, str)):
        return compare(a, b)
    return False


def _contains(found: Any, operand: Any) -> bool:
    if isinstance(found, str):
        return isinstance(operand, str) and operand in found
    if isinstance(found, list):
        return any(_equal(item, operand) for item in found)
    if isinstance(found, Mapping):
        return isinstance(operand, str) and operand in found
    return False


_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "$eq": lambda a, b: a is not _MISSING and _equal(a, b),
    "$ne": lambda a, b: a is _MISSING or not _equal(a, b),
    "$gt": lambda a, b: _ordered(a, b, lambda x, y: x > y),
    "$gte": lambda a, b: _ordered(a, b, lambda x, y: x >= y),
    "$lt": lambda a, b: _ordered(a, b, lambda x, y: x < y),
    "$lte": lambda a, b: _ordered(a, b, lambda x, y: x <= y),
    "$in": lambda a, b: a is not _MISSING and any(_equal(a, x) for x in b),
    "$contains": _contains,
}


def sort_fields(sort: Any) -> list[tuple[str, bool]]:
    """``sort`` as (field, descending) pairs; QueryError when malformed."""
    if sort is None or sort == "":
        return []
    items = sort if isinstance(sort, list) else [sort]
    fields = []
    for item in items:
        if not isinstance(item, str) or item in ("", "-"):
            raise QueryError(f"sort must be a field name, '-field' or a list of them, got {item!r}")
        fields.append((item[1:], True) if item.startswith("-") else (item, False))
    return fields


def sort_rows(
    rows: list[Any], fields: Sequence[tuple[str, bool]], value: Callable[[Any], Any]
) -> None:
    """Sort ``rows`` in place by ``fields`` of ``value(row)``; stable, missing fields last."""
    for field, descending in reversed(fields):
        present = [r for r in rows if _sortable(field_of(value(r), field))]
        absent = [r for r in rows if not _sortable(field_of(value(r), field))]
        present.sort(key=lambda r: _sort_key(field_of(value(r), field)), reverse=descending)
        rows[:] = present + absent


def _sortable(found: Any) -> bool:
    return found is not _MISSING and found is not None


def _sort_key(found: Any) -> tuple[int, Any]:
    # Numbers before text before anything else (as JSON text): a total order across kinds.
    if isinstance(found, bool):
        return (0, int(found))
    if isinstance(found, int | float):
        return (1, found)
    if isinstance(found, str):
        return (2, found)
    return (3, repr(found))


def _kind(value: Any) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    return "null" if value is None else f"a {type(value).__name__}"
