"""The registry of storage backends the conformance suite runs against.

Each backend registers a factory: an async context manager that yields a connected, EMPTY
``Store`` using the given clock, and cleans up after. The suite's ``store`` fixture is
parametrized over every registered name, so one test body runs on every backend.

Adding a backend from another file (e.g. DynamoDB) needs no edit here: create
``tests/storage/<name>_backend.py`` that calls ``register_backend`` at import; every module of
this package whose name ends in ``_backend`` is imported below, before the fixture is built.
A factory may call ``request.getfixturevalue(...)`` for session resources and
``tests.conftest.require_service`` to skip (locally) or fail (CI) without its server.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from flowrunner.storage import Store
from flowrunner.storage.memory import MemoryStore
from flowrunner.storage.sql import SqlStore

StoreFactory = Callable[[pytest.FixtureRequest, "FakeClock"], AbstractAsyncContextManager[Store]]


class FakeClock:
    """A clock tests move by hand; each reading also ticks 1 ms so timestamps are distinct
    and creation order is the order of calls."""

    def __init__(self, start: datetime = datetime(2026, 1, 1, tzinfo=UTC)) -> None:
        self.now = start

    def __call__(self) -> datetime:
        self.now += timedelta(milliseconds=1)
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@dataclass(frozen=True)
class Backend:
    name: str
    factory: StoreFactory
    marks: Sequence[Any] = field(default_factory=tuple)


BACKENDS: dict[str, Backend] = {}


def register_backend(
    name: str, *, marks: Sequence[Any] = ()
) -> Callable[[StoreFactory], StoreFactory]:
    def add(factory: StoreFactory) -> StoreFactory:
        BACKENDS[name] = Backend(name, factory, tuple(marks))
        return factory

    return add


def backend_params() -> list[Any]:
    return [pytest.param(b.name, marks=list(b.marks), id=b.name) for b in BACKENDS.values()]


@register_backend("memory")
@asynccontextmanager
async def memory_store(request: pytest.FixtureRequest, clock: FakeClock) -> AsyncIterator[Store]:
    store = MemoryStore(clock=clock)
    await store.connect()
    yield store
    await store.close()


def _sqlite_copy(request: pytest.FixtureRequest) -> Path:
    # A copy of a database migrated once per session: migrating per test would dominate the
    # suite's run time, and the migration itself has its own tests.
    template: Path = request.getfixturevalue("sqlite_template")
    tmp_path: Path = request.getfixturevalue("tmp_path")
    db = tmp_path / "store.db"
    db.write_bytes(template.read_bytes())
    return db


@register_backend("sqlite")
@asynccontextmanager
async def sqlite_store(request: pytest.FixtureRequest, clock: FakeClock) -> AsyncIterator[Store]:
    """SQLite as served: the hot calls on plain sqlite3 (``storage/sql/direct/``)."""
    store = SqlStore(f"sqlite:///{_sqlite_copy(request)}", clock=clock, migrate=False)
    assert store.db.direct is not None
    await store.connect()
    yield store
    await store.close()


@register_backend("sqlite-sqlalchemy")
@asynccontextmanager
async def sqlite_sqlalchemy_store(
    request: pytest.FixtureRequest, clock: FakeClock
) -> AsyncIterator[Store]:
    """SQLite with every call through SQLAlchemy, the code PostgreSQL runs."""
    url = f"sqlite:///{_sqlite_copy(request)}"
    store = SqlStore(url, clock=clock, migrate=False, direct=False)
    await store.connect()
    yield store
    await store.close()


@register_backend("postgres", marks=[pytest.mark.postgres])
@asynccontextmanager
async def postgres_store(request: pytest.FixtureRequest, clock: FakeClock) -> AsyncIterator[Store]:
    """PostgreSQL as served: the hot calls on plain asyncpg (``storage/sql/direct/postgres/``)."""
    url: str = request.getfixturevalue("postgres_database")
    store = SqlStore(url, clock=clock, migrate=False)
    assert store.db.direct_pg is not None
    await store.connect()
    await store.truncate_all()
    yield store
    await store.close()


@register_backend("postgres-sqlalchemy", marks=[pytest.mark.postgres])
@asynccontextmanager
async def postgres_sqlalchemy_store(
    request: pytest.FixtureRequest, clock: FakeClock
) -> AsyncIterator[Store]:
    """PostgreSQL with every call through SQLAlchemy."""
    url: str = request.getfixturevalue("postgres_database")
    store = SqlStore(url, clock=clock, migrate=False, direct=False)
    assert store.db.direct_pg is None
    await store.connect()
    await store.truncate_all()
    yield store
    await store.close()


def _load_backend_plugins() -> None:
    for module in pkgutil.iter_modules([str(Path(__file__).parent)]):
        if module.name.endswith("_backend"):
            importlib.import_module(f"{__package__}.{module.name}")


_load_backend_plugins()
