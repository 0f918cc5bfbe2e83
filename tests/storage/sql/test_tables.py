"""``UTCDateTime``: aware UTC times in and out, on each dialect's own processing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect

from flowrunner.storage.sql.tables import UTCDateTime

LOCAL = timezone(timedelta(hours=2))
DIALECTS = [
    pytest.param(postgresql.asyncpg.dialect(), id="postgres"),
    pytest.param(sqlite.dialect(), id="sqlite"),
]


def _processors(dialect: Dialect) -> tuple[Any, Any]:
    impl = UTCDateTime().dialect_impl(dialect)
    bind = impl.bind_processor(dialect) or (lambda v: v)
    result = impl.result_processor(dialect, None) or (lambda v: v)
    return bind, result


@pytest.mark.parametrize("dialect", DIALECTS)
def test_a_time_goes_in_as_utc_and_comes_back_aware(dialect: Dialect) -> None:
    bind, result = _processors(dialect)
    given = datetime(2026, 3, 1, 12, 30, 0, 5, tzinfo=LOCAL)
    stored = bind(given)
    back = result(stored)
    assert back == given
    assert back.tzinfo is UTC
    assert bind(None) is None
    assert result(None) is None


@pytest.mark.parametrize("dialect", DIALECTS)
def test_a_naive_time_is_refused_on_every_dialect(dialect: Dialect) -> None:
    bind, _ = _processors(dialect)
    with pytest.raises(ValueError, match="naive"):
        bind(datetime(2026, 3, 1))


def test_an_aware_time_read_from_postgres_is_given_in_utc() -> None:
    _, result = _processors(postgresql.asyncpg.dialect())
    read = result(datetime(2026, 3, 1, 14, 0, tzinfo=LOCAL))
    assert read == datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    assert read.tzinfo is UTC
