"""The API on PostgreSQL (the production store): the main journeys, on a database of its own."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr

from flowrunner.api import create_app
from flowrunner.config import Settings
from tests.api.helpers import ADMIN, YAML_TYPE, Api, Headers, cheap_hasher, flow_yaml
from tests.conftest import require_service
from tests.storage.conftest import scratch_postgres_database

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    server = require_service("FLOWRUNNER_TEST_POSTGRES_URL", "PostgreSQL")
    # Not migrated up front: the app's start migrates it, as `flowrunner serve` would.
    yield from scratch_postgres_database(server, migrate=False)


@pytest.fixture
async def pg_api(postgres_url: str, tmp_path: Path) -> AsyncIterator[Api]:
    settings = Settings(
        storage="postgres",
        database_url=postgres_url,
        data_dir=tmp_path,
        secret_keys=SecretStr(Fernet.generate_key().decode()),
        admin_username=ADMIN[0],
        admin_password=SecretStr(ADMIN[1]),
    )
    app = create_app(settings, hasher=cheap_hasher())
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield Api(client, app)


async def user(api: Api, name: str) -> Headers:
    admin = await api.login(*ADMIN)
    # The module shares one database: a name taken by an earlier test is simply logged in.
    response = await api.client.post(
        "/api/v1/accounts", json={"username": name, "password": "password-123"}, headers=admin
    )
    assert response.status_code in (201, 409)
    return await api.login(name, "password-123")


async def test_concurrent_resumes_of_one_failed_run_start_one_run_on_postgres(pg_api: Api) -> None:
    from tests.api.test_executions import FAILING, resume_five_at_once

    alice = await user(pg_api, "pg-resumer")
    flow_id: str = (await pg_api.create_flow(alice, FAILING))["id"]
    await resume_five_at_once(pg_api, alice, flow_id)


async def test_flow_lifecycle_on_postgres(pg_api: Api) -> None:
    alice = await user(pg_api, "pg-alice")
    flow = await pg_api.create_flow(alice, flow_yaml(name="PgFlow"))
    url = f"/api/v1/flows/{flow['id']}"
    updated = await pg_api.client.put(
        url,
        content=flow_yaml(name="PgFlow", value="2"),
        headers={**alice, **YAML_TYPE, "if-match": '"1"'},
    )
    assert updated.json()["version"] == 2
    stale = await pg_api.client.put(
        url, json={"content": flow_yaml()}, headers={**alice, "if-match": '"1"'}
    )
    assert stale.status_code == 412
    diff = await pg_api.client.get(f"{url}/diff", params={"from": 1, "to": 2}, headers=alice)
    assert "+      values: {greeting: 2}\n" in diff.json()["diff"]
    found = await pg_api.client.get("/api/v1/flows", params={"name": "pgflow"}, headers=alice)
    assert [f["id"] for f in found.json()["items"]] == [flow["id"]]
    assert (await pg_api.client.delete(url, headers=alice)).status_code == 204
    assert (await pg_api.client.get(url, headers=alice)).status_code == 404


async def test_isolation_and_secrets_on_postgres(pg_api: Api) -> None:
    alice = await user(pg_api, "pg-alice")
    bob = await user(pg_api, "pg-bob")
    flow = await pg_api.create_flow(alice)
    assert (await pg_api.client.get(f"/api/v1/flows/{flow['id']}", headers=bob)).status_code == 404
    put = await pg_api.client.put(
        "/api/v1/accounts/me/secrets/PG", json={"value": {"dsn": "x"}}, headers=alice
    )
    assert put.status_code == 200
    read = await pg_api.client.get("/api/v1/accounts/me/secrets/PG", headers=alice)
    assert read.json()["value"] == {"dsn": "x"}
    assert (
        await pg_api.client.get("/api/v1/accounts/me/secrets/PG", headers=bob)
    ).status_code == 404
    report = await pg_api.app.state.services.audit.verify()
    assert report.ok
