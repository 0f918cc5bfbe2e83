"""Keyset pagination in SQL: the WHERE/ORDER BY/LIMIT that turn a cursor into the next page."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Row, Select, Table, literal, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection

from flowrunner.storage.pagination import (
    InvalidCursor,
    clamp_limit,
    decode_cursor,
    decode_time_cursor,
    encode_cursor,
)
from flowrunner.storage.records import Page
from flowrunner.storage.sql.tables import UTCDateTime

T = TypeVar("T")


async def time_page(
    conn: AsyncConnection,
    stmt: Select[Any],
    table: Table,
    *,
    limit: int,
    cursor: str | None,
    record: Callable[[Row[Any]], T],
) -> Page[T]:
    """Newest first by ``(created_at, id)``; the row-value comparison lets the database seek
    straight into the ``(account_id, created_at, id)`` index."""
    limit = clamp_limit(limit)
    if cursor is not None:
        created, ident = decode_time_cursor(cursor)
        stmt = stmt.where(
            tuple_(table.c.created_at, table.c.id)
            < tuple_(_bind(table, "created_at", created), _bind(table, "id", ident))
        )
    stmt = stmt.order_by(table.c.created_at.desc(), table.c.id.desc()).limit(limit + 1)
    rows = (await conn.execute(stmt)).all()
    return cut(rows, limit, record, lambda r: encode_cursor(r.created_at, r.id))


async def key_page(
    conn: AsyncConnection,
    stmt: Select[Any],
    columns: Sequence[Any],
    *,
    limit: int,
    cursor: str | None,
    record: Callable[[Row[Any]], T],
    descending: bool = False,
) -> Page[T]:
    """Ordered by a unique tuple of string/int ``columns`` (ascending unless ``descending``)."""
    query = key_page_query(stmt, columns, limit=limit, cursor=cursor, descending=descending)
    return key_page_cut((await conn.execute(query)).all(), columns, limit, record)


def key_page_query(
    stmt: Select[Any],
    columns: Sequence[Any],
    *,
    limit: int,
    cursor: str | None,
    descending: bool = False,
) -> Select[Any]:
    """The one statement of a ``key_page`` (for callers that run it themselves)."""
    if cursor is not None:
        after = [
            _typed(c, v, cursor)
            for c, v in zip(columns, decode_cursor(cursor, len(columns)), strict=True)
        ]
        left = tuple_(*columns) if len(columns) > 1 else columns[0]
        right = tuple_(*after) if len(columns) > 1 else after[0]
        stmt = stmt.where(left < right if descending else left > right)
    order = [c.desc() if descending else c.asc() for c in columns]
    return stmt.order_by(*order).limit(clamp_limit(limit) + 1)


def key_page_cut(
    rows: Sequence[Row[Any]], columns: Sequence[Any], limit: int, record: Callable[[Row[Any]], T]
) -> Page[T]:
    names = [c.name for c in columns]
    return cut(
        rows,
        clamp_limit(limit),
        record,
        lambda r: encode_cursor(*(getattr(r, n) for n in names)),
    )


def cut(
    rows: Sequence[Row[Any]],
    limit: int,
    record: Callable[[Row[Any]], T],
    cursor_of: Callable[[Row[Any]], str],
) -> Page[T]:
    more = len(rows) > limit
    rows = rows[:limit]
    return Page([record(r) for r in rows], cursor_of(rows[-1]) if more else None)


def _typed(column: Any, value: str | int, cursor: str) -> Any:
    """A cursor value bound with its column's type (timestamps travel as ISO text)."""
    if isinstance(column.type, UTCDateTime):
        if not isinstance(value, str):
            raise InvalidCursor("invalid pagination cursor", cursor=cursor)
        try:
            return literal(datetime.fromisoformat(value), type_=column.type)
        except ValueError as exc:
            raise InvalidCursor("invalid pagination cursor", cursor=cursor) from exc
    return literal(value, type_=column.type)


def _bind(table: Table, column: str, value: Any) -> Any:
    # A typed literal, so the datetime goes through UTCDateTime like any other bound value.
    return literal(value, type_=table.c[column].type)
