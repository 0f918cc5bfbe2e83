"""The row codec of both direct paths: which columns the hot reads select, how such a row
becomes a record, and how a record's value becomes a column.

SQLite's (``direct``) and PostgreSQL's (``direct.postgres``) paths store the same values as
the SQLAlchemy tables do (JSON as ``jsontext`` text, NULL for None); they differ only in
times, which SQLite keeps as ``sqlite.time_text`` while asyncpg hands aware datetimes both
ways. So one ``RowCodec`` serves both, given the time conversion (``SQLITE_ROWS``) or none
(``POSTGRES_ROWS``). The SQL here has no WHERE: each path adds its own, in its placeholders.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from flowrunner import jsontext
from flowrunner.storage.pagination import encode_cursor
from flowrunner.storage.records import Execution, Flow, JSONValue, Page, Secret
from flowrunner.storage.sql.sqlite import optional_text_time, optional_time_text

EXECUTION_COLUMNS = Execution.__slots__
# Where a running execution is comes from its position row (see tables.py).
_POSITIONED = {
    "progress": "COALESCE(p.progress, e.progress)",
    "current_node": "COALESCE(p.current_node, e.current_node)",
}
SELECT_EXECUTIONS = (
    f"SELECT {', '.join(_POSITIONED.get(c, f'e.{c}') for c in EXECUTION_COLUMNS)}"
    " FROM executions e LEFT JOIN execution_positions p ON p.execution_id = e.id"
)
"""Executions as readers see them, aliased ``e``; its columns are ``EXECUTION_COLUMNS``."""
JSON_COLUMNS = frozenset({"input", "output", "error", "usage", "wait"})
TIME_COLUMNS = frozenset({"created_at", "started_at", "finished_at", "lease_expires_at", "wake_at"})
SELECT_FLOWS = (
    "SELECT id, account_id, name, description, tags, current_version, created_at, updated_at,"
    " deleted_at FROM flows"
)
SELECT_SECRETS = (
    "SELECT account_id, key, ciphertext, key_id, metadata, created_at, updated_at FROM secrets"
)


def dump_json(value: JSONValue) -> str | None:
    return None if value is None else jsontext.dumps(value)


def load_json(text: str | None) -> Any:
    return None if text is None else jsontext.loads(text)


class RowCodec:
    def __init__(
        self,
        read_time: Callable[[Any], datetime | None] | None = None,
        write_time: Callable[[datetime | None], Any] | None = None,
    ) -> None:
        """``read_time`` turns a stored time into an aware datetime, ``write_time`` the other
        way; None where the driver does it (the value passes as it is)."""
        self._read_time = read_time
        self._write_time = write_time

    def execution(self, row: Sequence[Any]) -> Execution:
        """An ``EXECUTION_COLUMNS`` row (``SELECT_EXECUTIONS``, or ``RETURNING`` them)."""
        values = dict(zip(EXECUTION_COLUMNS, row, strict=True))
        for name in JSON_COLUMNS:
            values[name] = load_json(values[name])
        if self._read_time is not None:
            for name in TIME_COLUMNS:
                values[name] = self._read_time(values[name])
        return Execution(**values)

    def column(self, name: str, value: Any) -> Any:
        """The value of an execution's field ``name`` as its column stores it."""
        if name in JSON_COLUMNS:
            return dump_json(value)
        if self._write_time is not None and name in TIME_COLUMNS:
            return self._write_time(value)
        return value

    def flow(self, row: Sequence[Any]) -> Flow:
        """A ``SELECT_FLOWS`` row."""
        return Flow(
            row[0], row[1], row[2], row[3], tuple(jsontext.loads(row[4])), row[5],
            self._time(row[6]), self._time(row[7]), self._time(row[8]),
        )  # fmt: skip

    def secrets_page(self, rows: Sequence[Sequence[Any]], limit: int) -> Page[Secret]:
        """A page of ``limit`` from ``SELECT_SECRETS`` rows ordered by key, fetched with a
        LIMIT of one more (whose presence says there is a next page)."""
        items = [
            Secret(
                r[0], r[1], bytes(r[2]), r[3], jsontext.loads(r[4]), self._time(r[5]),
                self._time(r[6]),
            )
            for r in rows[:limit]
        ]  # fmt: skip
        return Page(items, encode_cursor(items[-1].key) if len(rows) > limit else None)

    def _time(self, value: Any) -> Any:
        return value if self._read_time is None else self._read_time(value)


SQLITE_ROWS = RowCodec(optional_text_time, optional_time_text)
POSTGRES_ROWS = RowCodec()
