"""The key-value operations the ``store``, ``postgres`` and ``dynamodb`` nodes share, with one
output shape each whatever holds the data.

=========  ===============================================  ==================================
operation  params                                           output
=========  ===============================================  ==================================
get        key, default                                     the value (or ``default``)
set        key, value, ttl                                  ``{key, value, success: true}``
delete     key                                              ``{key, deleted, success: true}``
list       prefix, limit                                    the keys, sorted
query      prefix, filter, sort, limit                      ``[{key, value}, ...]``
=========  ===============================================  ==================================

A table is anything with the ``KVTable`` shape; ``list`` and ``query`` read at most
``MAX_SCAN`` entries and fail beyond, naming ``prefix`` as the way to narrow them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any, Protocol

from flowrunner.durations import DURATION_HINT, DURATION_PATTERN, parse_duration
from flowrunner.nodes.kv_query import QueryError, check_filter, matches, sort_fields, sort_rows

MAX_SCAN = 10_000
MAX_KEY_LENGTH = 512
KV_OPERATIONS = ("get", "set", "delete", "list", "query")


class KeyMissing(LookupError):
    """The key has no (live) entry."""


class KVTable(Protocol):
    # True when ``scan`` yields keys in order: ``list`` and an unsorted ``query`` with a
    # ``limit`` then stop reading once they have enough.
    ordered: bool

    async def get(self, key: str) -> Any:
        """The value; KeyMissing when there is none."""

    async def set(self, key: str, value: Any, ttl: float | None) -> None: ...

    async def delete(self, key: str) -> bool:
        """True when a live entry was deleted."""

    def scan(self, prefix: str) -> AsyncIterator[tuple[str, Any]]:
        """(key, value) of live entries whose key starts with ``prefix``, in any order."""


class OperationError(ValueError):
    """Bad params for an operation: the message names the param."""


async def run_kv_operation(table: KVTable, operation: str, params: Mapping[str, Any]) -> Any:
    """Run one of ``KV_OPERATIONS`` on ``table``; the output as in the module's table."""
    if operation == "get":
        key = key_param(params)
        try:
            return await table.get(key)
        except KeyMissing:
            if "default" in params:
                return params["default"]
            raise KeyMissing(
                f"key '{key}' not found (give 'default' to get a value instead)"
            ) from None
    if operation == "set":
        key = key_param(params)
        if "value" not in params:
            raise OperationError("set needs 'value'")
        ttl = ttl_param(params)
        await table.set(key, params["value"], ttl)
        out = {"key": key, "value": params["value"], "success": True}
        return {**out, "ttl": ttl} if ttl is not None else out
    if operation == "delete":
        key = key_param(params)
        return {"key": key, "deleted": await table.delete(key), "success": True}
    if operation == "list":
        limit = limit_param(params)
        keys: list[str] = []
        async for key, _ in _bounded(table, prefix_param(params)):
            keys.append(key)
            if table.ordered and limit is not None and len(keys) >= limit:
                break
        keys.sort()
        return keys[:limit] if limit is not None else keys
    if operation == "query":
        return await query(table, params)
    raise OperationError(f"unknown operation {operation!r} (use {', '.join(KV_OPERATIONS)})")


async def query(table: KVTable, params: Mapping[str, Any]) -> list[dict[str, Any]]:
    where = params.get("filter")
    try:
        check_filter(where)
        fields = sort_fields(params.get("sort"))
    except QueryError as exc:
        raise OperationError(str(exc)) from None
    limit = limit_param(params)
    enough = table.ordered and not fields and limit is not None
    rows: list[dict[str, Any]] = []
    async for key, value in _bounded(table, prefix_param(params)):
        if matches(value, where):
            rows.append({"key": key, "value": value})
            if enough and len(rows) >= (limit or 0):
                break
    rows.sort(key=lambda r: str(r["key"]))
    sort_rows(rows, fields, lambda r: r["value"])
    return rows[:limit] if limit is not None else rows


async def _bounded(table: KVTable, prefix: str) -> AsyncIterator[tuple[str, Any]]:
    count = 0
    async for entry in table.scan(prefix):
        count += 1
        if count > MAX_SCAN:
            raise OperationError(
                f"more than {MAX_SCAN} entries to read"
                + (f" under prefix '{prefix}'" if prefix else "")
                + ": narrow them with a (longer) prefix"
            )
        yield entry


def key_param(params: Mapping[str, Any]) -> str:
    key = params.get("key")
    if key is None or key == "":
        raise OperationError("this operation needs 'key'")
    if isinstance(key, bool) or not isinstance(key, str | int | float):
        raise OperationError(f"key must be text, got {type(key).__name__}")
    text = str(key)
    if len(text) > MAX_KEY_LENGTH:
        raise OperationError(f"key is {len(text)} characters long (at most {MAX_KEY_LENGTH})")
    return text


def prefix_param(params: Mapping[str, Any]) -> str:
    prefix = params.get("prefix")
    return "" if prefix is None else str(prefix)


def limit_param(params: Mapping[str, Any]) -> int | None:
    limit = params.get("limit")
    if limit is None:
        return None
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise OperationError(f"limit must be a whole number >= 0, got {limit!r}")
    return limit


def ttl_param(params: Mapping[str, Any]) -> float | None:
    ttl = params.get("ttl")
    if ttl is None:
        return None
    try:
        seconds = parse_duration(ttl)
    except ValueError as exc:
        raise OperationError(f"ttl: {exc} ({DURATION_HINT})") from None
    if seconds <= 0:
        raise OperationError("ttl must be more than 0 seconds")
    return seconds


# JSON Schema pieces of the params the KV nodes share.
KEY_SCHEMA = {"type": ["string", "number"], "minLength": 1, "maxLength": MAX_KEY_LENGTH}
TTL_SCHEMA = {"type": ["number", "string"], "exclusiveMinimum": 0, "pattern": DURATION_PATTERN}
KV_PARAMS: dict[str, Any] = {
    "key": KEY_SCHEMA,
    "value": {},
    "default": {},
    "ttl": TTL_SCHEMA,
    "prefix": {"type": "string"},
    "limit": {"type": "integer", "minimum": 0},
    "filter": {"type": "object"},
    "sort": {"type": ["string", "array"], "items": {"type": "string", "minLength": 1}},
}


def needs(operation: str, *required: str) -> dict[str, Any]:
    """A JSON Schema rule: when ``operation`` is this one, ``required`` params must be given."""
    return {
        "if": {"properties": {"operation": {"const": operation}}, "required": ["operation"]},
        "then": {"required": list(required)},
    }
