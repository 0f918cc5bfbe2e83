"""The ``gsi3`` work queues: reading what is due, and claiming it one conditional write at a time.

``gsi3`` holds sparse, cross-account queues (expired execution leases, due webhook deliveries,
expiring KV entries), each a partition keyed by its name and sorted by due time. The index is
only eventually consistent, so what it lists is a *candidate*: the caller takes each one with a
conditional write on the base item, which alone decides between concurrent workers.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar

from flowrunner.storage.dynamodb.client import Table
from flowrunner.storage.dynamodb.codec import SEP, from_item, ts
from flowrunner.storage.pagination import clamp_limit

T = TypeVar("T")


def due_by(now: datetime) -> str:
    """The highest sort key due at ``now`` for keys ``<time> SEP <id>``: chr(1) sorts right
    above SEP, so every id at ``now`` is included."""
    return f"{ts(now)}{chr(ord(SEP) + 1)}"


async def due_keys(
    table: Table, queue: str, upto: str, *, page: int | None = None
) -> AsyncGenerator[tuple[str, str], None]:
    """The (pk, sk) of every item of ``queue`` whose sort key is at most ``upto``, in due
    order, read ``page`` at a time."""
    request: dict[str, Any] = {
        "IndexName": "gsi3",
        "KeyConditionExpression": "gsi3pk = :q AND gsi3sk <= :upto",
        "ExpressionAttributeValues": {":q": {"S": queue}, ":upto": {"S": upto}},
    }
    if page is not None:
        request["Limit"] = page
    while True:
        response = await table.query(**request)
        for raw in response.get("Items", []):
            candidate = from_item(raw)
            yield candidate["pk"], candidate["sk"]
        if "LastEvaluatedKey" not in response:
            return
        request["ExclusiveStartKey"] = response["LastEvaluatedKey"]


async def claim_due(
    table: Table,
    queue: str,
    now: datetime,
    limit: int,
    take: Callable[[str, str], Awaitable[T | None]],
) -> list[T]:
    """Up to ``limit`` due items of ``queue``, each ``take``-n (None: someone else's now)."""
    limit = clamp_limit(limit)
    claimed: list[T] = []
    async with contextlib.aclosing(due_keys(table, queue, due_by(now), page=limit)) as due:
        async for pk, sk in due:
            taken = await take(pk, sk)
            if taken is not None:
                claimed.append(taken)
                if len(claimed) == limit:
                    break
    return claimed
