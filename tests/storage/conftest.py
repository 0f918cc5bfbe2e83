"""Fixtures of the storage conformance suite: ``store`` runs each test on every backend."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from flowrunner.storage import Account, Store
from flowrunner.storage.sql.migrate import upgrade
from tests.conftest import require_service, run_async
from tests.storage.backends import BACKENDS, FakeClock, backend_params


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=backend_params())
async def store(request: pytest.FixtureRequest, clock: FakeClock) -> AsyncIterator[Store]:
    async with BACKENDS[request.param].factory(request, clock) as opened:
        yield opened


@pytest.fixture
async def account(store: Store) -> Account:
    return await store.accounts.create("ada", "hash-a")


@pytest.fixture
async def other(store: Store) -> Account:
    """A second account, to prove isolation."""
    return await store.accounts.create("bob", "hash-b")


@pytest.fixture(scope="session")
def postgres_server() -> str:
    return require_service("FLOWRUNNER_TEST_POSTGRES_URL", "PostgreSQL")


@pytest.fixture(scope="session")
def postgres_database(postgres_server: str) -> Iterator[str]:
    """A database of its own for this test session, migrated once, dropped at the end."""
    yield from scratch_postgres_database(postgres_server, migrate=True)


def scratch_postgres_database(
    server: str, *, migrate: bool, template: str | None = None
) -> Iterator[str]:
    """A database of its own, dropped at the end: empty, migrated to head (``migrate``) or a
    copy of the database named ``template`` (no one may be connected to it meanwhile)."""
    name = f"flowrunner_test_{os.getpid()}_{os.urandom(3).hex()}"
    admin_dsn = make_url(server).set(drivername="postgresql").render_as_string(False)
    url = make_url(server).set(database=name).render_as_string(False)

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(admin_dsn)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    copy = f' TEMPLATE "{template}"' if template else ""
    run_async(admin, f'CREATE DATABASE "{name}"{copy}')
    try:
        if migrate:
            run_async(upgrade, url)
        yield url
    finally:
        run_async(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
