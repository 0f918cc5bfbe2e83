"""Through a real server: the store node counts runs of one account atomically and keeps
accounts apart; postgres and dynamodb nodes run with their secrets, which reach neither the
database nor the log."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import make_url

from tests.conftest import require_service
from tests.e2e.server import Server, create_flow, start_run
from tests.storage.conftest import scratch_postgres_database

pytestmark = pytest.mark.slow

COUNTER = """\
metadata: {name: Counter}
nodes:
  count: {type: store, params: {operation: increment, key: runs}, next: {default: seen}}
  seen: {type: store, params: {operation: append, key: seen, value: "${input}"}}
"""

READ = """\
metadata: {name: Read}
nodes:
  runs: {type: store, params: {operation: get, key: runs, default: none}, next: {default: seen}}
  seen: {type: store, params: {operation: get, key: seen, default: []}, next: {default: out}}
  out: {type: set, params: {values: {runs: "${results.runs}", seen: "${results.seen}",
        compat: "${shared.store_result}"}}}
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with Server(tmp_path_factory.mktemp("datanodes"), executor_concurrency=8) as running:
        yield running


async def _login(server: Server, http: httpx.AsyncClient, username: str) -> httpx.AsyncClient:
    admin = {"Authorization": f"Bearer {server.token()}"}
    created = await http.post(
        "/api/v1/accounts", json={"username": username, "password": "password-123"}, headers=admin
    )
    assert created.status_code == 201, created.text
    login = await http.post(
        "/api/v1/login", json={"username": username, "password": "password-123"}
    )
    assert login.status_code == 200, login.text
    headers = {"Authorization": f"Bearer {login.json()['token']}"}
    return httpx.AsyncClient(base_url=server.url, headers=headers, timeout=60)


@pytest.fixture
async def accounts(server: Server) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        suffix = os.urandom(3).hex()
        a = await _login(server, http, f"ada-{suffix}")
        b = await _login(server, http, f"bob-{suffix}")
    try:
        yield a, b
    finally:
        await a.aclose()
        await b.aclose()


async def _wait_all(client: httpx.AsyncClient, ids: list[str]) -> list[dict[str, Any]]:
    views: list[dict[str, Any]] = []
    for _ in range(600):  # a hang guard, not a time limit
        views = [(await client.get(f"/api/v1/executions/{i}")).json() for i in ids]
        if all(v["status"] in ("completed", "failed", "canceled") for v in views):
            return views
        await asyncio.sleep(0.1)
    raise AssertionError(f"runs never ended: {[v['status'] for v in views]}")


async def _run(client: httpx.AsyncClient, yaml: str, run_input: Any = None) -> dict[str, Any]:
    flow_id = await create_flow(client, yaml)
    response = await client.post(
        f"/api/v1/flows/{flow_id}/run?wait=60s", json={"input": run_input or {}}
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_store_counts_concurrent_runs_atomically_per_account(
    accounts: tuple[httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    a, b = accounts
    counter = await create_flow(a, COUNTER)
    runs = 10
    ids = [await start_run(a, counter, {}) for _ in range(runs)]
    views = await _wait_all(a, ids)
    assert [v["status"] for v in views] == ["completed"] * runs, views
    read = await _run(a, READ)
    assert read["status"] == "completed", read
    assert read["output"]["runs"] == runs
    # Every run saw its own count: no two increments read the same old value.
    assert sorted(read["output"]["seen"]) == list(range(1, runs + 1))
    assert read["output"]["compat"] == read["output"]["seen"]
    # Another account's store is its own: nothing of A's is visible.
    other = await _run(b, READ)
    assert other["output"] == {"runs": "none", "seen": [], "compat": []}


@pytest.fixture(scope="module")
def pg_database() -> Iterator[str]:
    server = require_service("FLOWRUNNER_TEST_POSTGRES_URL", "PostgreSQL")
    yield from scratch_postgres_database(server, migrate=False)


async def test_postgres_and_dynamodb_nodes_keep_their_secrets_out_of_the_database_and_log(
    server: Server,
    accounts: tuple[httpx.AsyncClient, httpx.AsyncClient],
    dynamodb_endpoint: str,
    pg_database: str,
) -> None:
    pg_server = pg_database
    a, _ = accounts
    password = "pg-pw-" + os.urandom(6).hex()  # the server trusts local users: any password
    dsn = make_url(pg_server).set(drivername="postgresql", password=password)
    refused = dsn.set(port=1)
    aws_secret = "aws-secret-" + os.urandom(6).hex()
    table = f"e2e_{os.urandom(3).hex()}"
    for key, value in (
        ("PG_DSN", dsn.render_as_string(False)),
        ("PG_DOWN", refused.render_as_string(False)),
        ("AWS_SECRET", aws_secret),
    ):
        saved = await a.post("/api/v1/accounts/me/secrets", json={"key": key, "value": value})
        assert saved.status_code == 201, saved.text
    flow = f"""\
metadata: {{name: Databases}}
nodes:
  make:
    type: postgres
    params: {{dsn: "${{secrets.PG_DSN}}", operation: execute,
             query: "CREATE TABLE {table} (id int, name text)"}}
    next: {{default: add}}
  add:
    type: postgres
    params:
      dsn: "${{secrets.PG_DSN}}"
      operation: transaction
      statements:
        - {{query: "INSERT INTO {table} VALUES ($1, $2)", args: [1, "${{shared.name}}"]}}
        - {{query: "SELECT name FROM {table} WHERE id = $1", args: [1]}}
    next: {{default: put}}
  put:
    type: dynamodb
    params: {{endpoint: "{dynamodb_endpoint}", table_name: {table}, aws_access_key_id: AKID,
             aws_secret_access_key: "${{secrets.AWS_SECRET}}", operation: set, key: who,
             value: "${{shared.postgres_result.results[1].rows[0].name}}"}}
    next: {{default: get}}
  get:
    type: dynamodb
    params: {{endpoint: "{dynamodb_endpoint}", table_name: {table}, aws_access_key_id: AKID,
             aws_secret_access_key: "${{secrets.AWS_SECRET}}", operation: get, key: who}}
    next: {{default: down}}
  down:
    type: postgres
    params: {{dsn: "${{secrets.PG_DOWN}}", operation: execute, query: "SELECT 1",
             connect_timeout: 5}}
    next: {{error: report}}
  report:
    type: set
    params: {{values: {{got: "${{shared.dynamodb_result}}", error: "${{error.message}}",
             put: "${{results.put}}", add: "${{results.add}}"}}}}
"""
    done = await _run(a, flow, {"name": "Ada"})
    assert done["status"] == "completed", done
    assert done["output"]["got"] == "Ada", done["output"]
    assert "cannot connect to PostgreSQL at 127.0.0.1:1" in done["output"]["error"]
    logs = await a.get(f"/api/v1/executions/{done['id']}/logs")
    events = await a.get(f"/api/v1/executions/{done['id']}/events")
    for blob in (
        b"".join(p.read_bytes() for p in server.data_dir.iterdir() if p.is_file()),
        logs.content,
        events.content,
        str(done).encode(),
    ):
        assert password.encode() not in blob
        assert aws_secret.encode() not in blob
