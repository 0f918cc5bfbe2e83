"""The shared state of a memory store: tables as dicts, one lock, the clock, paging helpers.

Every family of the memory backend works on one ``MemoryState`` so cross-family rules (an event
needs its execution, deleting an endpoint drops its deliveries) hold as they do in SQL.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from flowrunner import jsontext
from flowrunner.storage.pagination import (
    clamp_limit,
    decode_cursor,
    decode_time_cursor,
    encode_cursor,
)
from flowrunner.storage.records import (
    Account,
    ApiToken,
    AuditRecord,
    Checkpoint,
    Clock,
    Execution,
    ExecutionEvent,
    Flow,
    FlowVersion,
    JSONValue,
    KVEntry,
    Page,
    Secret,
    WebhookDelivery,
    WebhookEndpoint,
)

T = TypeVar("T")


@dataclass
class MemoryState:
    clock: Clock
    # One lock for every write: a memory store is a toy database with one writer at a time,
    # which is exactly the isolation the SQL backends promise.
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    accounts: dict[str, Account] = field(default_factory=dict)
    tokens: dict[str, ApiToken] = field(default_factory=dict)
    flows: dict[str, Flow] = field(default_factory=dict)
    versions: dict[tuple[str, int], FlowVersion] = field(default_factory=dict)
    secrets: dict[tuple[str, str], Secret] = field(default_factory=dict)
    executions: dict[str, Execution] = field(default_factory=dict)
    events: dict[str, list[ExecutionEvent]] = field(default_factory=dict)
    checkpoints: dict[str, Checkpoint] = field(default_factory=dict)
    endpoints: dict[str, WebhookEndpoint] = field(default_factory=dict)
    deliveries: dict[str, WebhookDelivery] = field(default_factory=dict)
    audit: dict[str, list[AuditRecord]] = field(default_factory=dict)
    kv: dict[tuple[str, str, str], KVEntry] = field(default_factory=dict)


def json_copy(value: JSONValue) -> Any:
    """A deep copy through JSON: callers cannot alias stored data, and a value the SQL
    backends would reject (not JSON-serialisable) is rejected here too."""
    return jsontext.copy(value)


def page_by_time(
    rows: Iterable[T],
    *,
    limit: int,
    cursor: str | None,
    key: Callable[[T], tuple[datetime, str]],
) -> Page[T]:
    """Newest first by ``(created_at, id)``, continuing after ``cursor``."""
    ordered = sorted(rows, key=key, reverse=True)
    if cursor is not None:
        after = decode_time_cursor(cursor)
        ordered = [r for r in ordered if key(r) < after]
    return _cut(ordered, clamp_limit(limit), lambda r: encode_cursor(*key(r)))


def page_by_name(
    rows: Iterable[T], *, limit: int, cursor: str | None, key: Callable[[T], str]
) -> Page[T]:
    """Ascending by a unique string ``key``, continuing after ``cursor``."""
    ordered = sorted(rows, key=key)
    if cursor is not None:
        (after,) = decode_cursor(cursor, 1)
        ordered = [r for r in ordered if key(r) > str(after)]
    return _cut(ordered, clamp_limit(limit), lambda r: encode_cursor(key(r)))


def _cut(ordered: list[T], limit: int, cursor_of: Callable[[T], str]) -> Page[T]:
    items = ordered[:limit]
    more = len(ordered) > limit
    return Page(items=items, next_cursor=cursor_of(items[-1]) if more else None)
