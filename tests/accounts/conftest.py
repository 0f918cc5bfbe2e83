"""Fixtures for the domain-service tests: real stores (memory and a SQLite file), a clock
the test moves, and cheap argon2 parameters (the real ones cost ~50 ms per hash)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from flowrunner.accounts import AccountService, LoginLimiter, PasswordHasher
from flowrunner.audit import AuditLog
from flowrunner.storage import Store
from flowrunner.storage.memory import MemoryStore
from flowrunner.storage.sql import SqlStore
from tests.storage.conftest import postgres_database, postgres_server

__all__ = ["postgres_database", "postgres_server"]


class ManualClock:
    """Wall-clock time (for stores and token expiry) that tests move by hand."""

    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(microseconds=1)
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


class Ticker:
    """Monotonic seconds for the login limiter."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def cheap_hasher() -> PasswordHasher:
    return PasswordHasher(time_cost=1, memory_cost=1024)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def ticker() -> Ticker:
    return Ticker()


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def store(
    request: pytest.FixtureRequest, tmp_path: Path, clock: ManualClock
) -> AsyncIterator[Store]:
    opened: Store
    if request.param == "memory":
        opened = MemoryStore(clock=clock)
        await opened.connect()
    elif request.param == "sqlite":
        opened = SqlStore(f"sqlite:///{tmp_path / 'flowrunner.db'}", clock=clock)
        await opened.connect()
    else:
        # The storage suite's session database (migrated once), emptied for this test.
        url: str = request.getfixturevalue("postgres_database")
        sql = SqlStore(url, clock=clock, migrate=False)
        await sql.connect()
        await sql.truncate_all()
        opened = sql
    yield opened
    await opened.close()


@pytest.fixture
def audit(store: Store) -> AuditLog:
    return AuditLog(store)


@pytest.fixture
def limiter(ticker: Ticker) -> LoginLimiter:
    return LoginLimiter(max_failures=3, max_failures_per_client=5, window_seconds=60, clock=ticker)


@pytest.fixture
def accounts(
    store: Store, audit: AuditLog, limiter: LoginLimiter, clock: ManualClock
) -> AccountService:
    return AccountService(store, audit, limiter, hasher=cheap_hasher(), clock=clock)
