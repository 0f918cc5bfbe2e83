"""Driver errors become storage errors the same way whichever driver raised them."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError

from flowrunner.errors import Conflict, StorageError, StorageUnavailable
from flowrunner.storage.sql.errors import translate

SETUP = "CREATE TABLE t (k TEXT PRIMARY KEY)"
CASES: list[tuple[str, type[StorageError]]] = [
    ("INSERT INTO t VALUES ('a'), ('a')", Conflict),  # IntegrityError
    ("SELECT * FROM missing", StorageUnavailable),  # OperationalError, as a locked database
    ("SELECT 1; SELECT 2", StorageError),  # ProgrammingError: anything else
]


def _plain_error(sql: str) -> BaseException:
    conn = sqlite3.connect(":memory:")
    conn.execute(SETUP)
    try:
        conn.execute(sql)
    except sqlite3.Error as exc:
        return exc
    finally:
        conn.close()
    raise AssertionError(f"{sql!r} did not fail")


def _sqlalchemy_error(sql: str) -> BaseException:
    engine = create_engine("sqlite://")
    try:
        with engine.connect() as conn:
            conn.execute(text(SETUP))
            conn.execute(text(sql))
    except DBAPIError as exc:
        return exc
    finally:
        engine.dispose()
    raise AssertionError(f"{sql!r} did not fail")


@pytest.mark.parametrize(("sql", "expected"), CASES)
@pytest.mark.parametrize("raise_from", [_plain_error, _sqlalchemy_error])
def test_each_driver_error_is_translated_alike(
    sql: str, expected: type[StorageError], raise_from: Callable[[str], BaseException]
) -> None:
    error = translate(raise_from(sql))
    assert type(error) is expected
    assert "\n" not in str(error)


def test_a_lost_connection_is_storage_unavailable() -> None:
    lost = DBAPIError("SELECT 1", {}, Exception("server closed the connection"), False, True)
    assert isinstance(translate(lost), StorageUnavailable)
    assert "connection lost" in str(translate(lost))


def test_an_os_error_is_storage_unavailable() -> None:
    assert isinstance(translate(ConnectionRefusedError("refused")), StorageUnavailable)
