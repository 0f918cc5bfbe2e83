"""Cursor pagination over one DynamoDB partition: a key range, optional Python filters.

A page is read with ``Query`` (base table or an index), newest or oldest first, and continues
from an opaque cursor that encodes the DynamoDB key of the last item returned — exactly the
``ExclusiveStartKey`` the next ``Query`` needs, so page N costs what page 1 costs.

Filters that DynamoDB cannot express exactly (case-insensitive ``contains``, JSON equality in
KV values) run in Python on each fetched batch. That costs no extra read capacity (DynamoDB
bills a ``FilterExpression`` on the items read, not the items returned); the loop keeps reading
until the page is full or the partition is exhausted. The cursor is the key of the last item
*returned*, never ``LastEvaluatedKey`` itself, so items read past the page are not skipped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from flowrunner.storage.dynamodb.client import Table
from flowrunner.storage.dynamodb.codec import from_item
from flowrunner.storage.pagination import InvalidCursor, clamp_limit, decode_cursor, encode_cursor
from flowrunner.storage.records import Page

T = TypeVar("T")

KEY_NAMES: dict[str | None, tuple[str, str]] = {
    None: ("pk", "sk"),
    "gsi1": ("gsi1pk", "gsi1sk"),
    "gsi2": ("gsi2pk", "gsi2sk"),
    "gsi3": ("gsi3pk", "gsi3sk"),
}
FILTERED_BATCH = 200


@dataclass(frozen=True, slots=True)
class SortRange:
    """Which sort keys of the partition a listing covers: a prefix, or ``lo <= sk <= hi``."""

    prefix: str | None = None
    lo: str | None = None
    hi: str | None = None

    def condition(self, sk_name: str, values: dict[str, Any]) -> str:
        if self.prefix is not None:
            values[":prefix"] = self.prefix
            return f" AND begins_with({sk_name}, :prefix)"
        if self.lo is not None and self.hi is not None:
            values[":lo"], values[":hi"] = self.lo, self.hi
            return f" AND {sk_name} BETWEEN :lo AND :hi"
        if self.lo is not None:
            values[":lo"] = self.lo
            return f" AND {sk_name} >= :lo"
        if self.hi is not None:
            values[":hi"] = self.hi
            return f" AND {sk_name} <= :hi"
        return ""

    def contains(self, sk: str) -> bool:
        if self.prefix is not None:
            return sk.startswith(self.prefix)
        return (self.lo is None or sk >= self.lo) and (self.hi is None or sk <= self.hi)

    def is_empty(self) -> bool:
        return self.lo is not None and self.hi is not None and self.lo > self.hi


async def query_page(
    table: Table,
    *,
    partition: str,
    build: Callable[[dict[str, Any]], T],
    limit: int,
    cursor: str | None,
    index: str | None = None,
    sort: SortRange = SortRange(),
    newest_first: bool = True,
    keep: Callable[[T], bool] | None = None,
) -> Page[T]:
    limit = clamp_limit(limit)
    if sort.is_empty():
        return Page([])
    pk_name, sk_name = KEY_NAMES[index]
    values: dict[str, Any] = {":part": partition}
    key_condition = f"{pk_name} = :part" + sort.condition(sk_name, values)
    request: dict[str, Any] = {
        "KeyConditionExpression": key_condition,
        "ExpressionAttributeValues": {k: {"S": v} for k, v in values.items()},
        "ScanIndexForward": not newest_first,
        "Limit": limit + 1 if keep is None else max(limit + 1, FILTERED_BATCH),
    }
    if index is None:
        request["ConsistentRead"] = True
    else:
        request["IndexName"] = index
    start = _start_key(cursor, partition, index, sort) if cursor is not None else None

    kept: list[tuple[dict[str, Any], T]] = []
    while len(kept) <= limit:
        if start is not None:
            request["ExclusiveStartKey"] = start
        response = await table.query(**request)
        for raw in response.get("Items", []):
            fields = from_item(raw)
            record = build(fields)
            if keep is None or keep(record):
                kept.append((fields, record))
                if len(kept) > limit:
                    break
        start = response.get("LastEvaluatedKey")
        if start is None:
            break
    items = [record for _, record in kept[:limit]]
    more = len(kept) > limit
    return Page(items, _cursor(kept[limit - 1][0], partition, index) if more else None)


def _cursor(fields: dict[str, Any], partition: str, index: str | None) -> str:
    if index is None:
        return encode_cursor(partition, fields["sk"])
    _, sk_name = KEY_NAMES[index]
    return encode_cursor(partition, fields["pk"], fields["sk"], fields[sk_name])


def _start_key(cursor: str, partition: str, index: str | None, sort: SortRange) -> dict[str, Any]:
    parts = decode_cursor(cursor, 2 if index is None else 4)
    # A cursor of another partition (another account!) or outside this listing's key range
    # is refused here rather than handed to DynamoDB.
    if not all(isinstance(p, str) for p in parts) or parts[0] != partition:
        raise InvalidCursor("invalid pagination cursor", cursor=cursor)
    strings = [str(p) for p in parts]
    if not sort.contains(strings[-1]):
        raise InvalidCursor("pagination cursor is outside this listing", cursor=cursor)
    if index is None:
        return {"pk": {"S": partition}, "sk": {"S": strings[1]}}
    pk_name, sk_name = KEY_NAMES[index]
    return {
        "pk": {"S": strings[1]},
        "sk": {"S": strings[2]},
        pk_name: {"S": partition},
        sk_name: {"S": strings[3]},
    }


async def read_range(
    table: Table, partition: str, lo: str, hi: str, limit: int
) -> list[dict[str, Any]]:
    """Up to ``limit`` items of one partition with ``lo <= sk <= hi``, ascending and strongly
    consistent (sequence-numbered logs: events, audit chains)."""
    request: dict[str, Any] = {
        "KeyConditionExpression": "pk = :pk AND sk BETWEEN :lo AND :hi",
        "ExpressionAttributeValues": {":pk": {"S": partition}, ":lo": {"S": lo}, ":hi": {"S": hi}},
        "ConsistentRead": True,
        "Limit": limit,
    }
    found: list[dict[str, Any]] = []
    while len(found) < limit:
        response = await table.query(**request)
        found += [from_item(raw) for raw in response.get("Items", [])]
        if "LastEvaluatedKey" not in response:
            break
        request["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        request["Limit"] = limit - len(found)
    return found[:limit]
