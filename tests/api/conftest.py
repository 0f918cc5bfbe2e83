"""API test harness: the real app on a real SQLite file, driven in-process through httpx.

Each test gets a fresh database copied from a session template (migrating from scratch takes
seconds), its own data dir and a fixed secrets key. Passwords use cheap argon2 parameters so
Basic authentication does not dominate the suite's time.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from cryptography.fernet import Fernet
from fastapi import FastAPI
from pydantic import SecretStr

from flowrunner.api import create_app
from flowrunner.config import Settings
from tests.api.helpers import ADMIN, Api, Headers, cheap_hasher


@pytest.fixture(scope="session")
def secret_key() -> str:
    return Fernet.generate_key().decode()


@pytest.fixture
def settings(tmp_path: Path, sqlite_template: Path, secret_key: str) -> Settings:
    db = tmp_path / "flowrunner.db"
    shutil.copyfile(sqlite_template, db)
    return Settings(
        storage="sqlite",
        data_dir=tmp_path,
        database_url=f"sqlite:///{db}",
        secret_keys=SecretStr(secret_key),
        admin_username=ADMIN[0],
        admin_password=SecretStr(ADMIN[1]),
        max_flow_bytes=64 * 1024,
        max_request_bytes=16 * 1024,
    )


@pytest.fixture
def app(settings: Settings) -> FastAPI:
    return create_app(settings, hasher=cheap_hasher())


@pytest.fixture
async def api(app: FastAPI) -> AsyncIterator[Api]:
    # ASGITransport does not run the lifespan; enter it so the store and services exist.
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield Api(client, app)


@pytest.fixture
async def admin(api: Api) -> Headers:
    return await api.login(*ADMIN)


@pytest.fixture
async def alice(api: Api, admin: Headers) -> Headers:
    return await api.new_user(admin, "alice")


@pytest.fixture
async def bob(api: Api, admin: Headers) -> Headers:
    return await api.new_user(admin, "bob")
