"""http.request through a real ``flowrunner serve``: a run calling a server on 127.0.0.1 (the
server allows loopback by its environment, as a self-hosted install would), its secret masked
in the database, the log and the API, cancellation through the API aborting the request, and
the default server refusing loopback."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from tests.conftest import HANG_GUARD
from tests.e2e.leaks import database_bytes, leaks
from tests.e2e.server import Server, create_flow, finished_run, start_run
from tests.http_server import TestServer, running_server

pytestmark = pytest.mark.slow

SECRET = 'http-s3cret"&/+?= token'  # JSON-, URL- and base64-special characters


@pytest.fixture(scope="module")
def api() -> Iterator[TestServer]:
    with running_server() as running:
        yield running


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with Server(tmp_path_factory.mktemp("http"), http_allow_private="true") as running:
        yield running


@pytest.fixture
async def admin(server: Server) -> AsyncIterator[httpx.AsyncClient]:
    async with server.client() as client:
        yield client


def one_request(name: str, url: str) -> str:
    node = f"{{type: http.request, params: {{url: '{url}'}}}}"
    return f"metadata: {{name: {name}}}\nnodes:\n  get: {node}\n"


async def test_a_run_calls_the_api_and_no_secret_form_reaches_db_log_or_answers(
    server: Server, admin: httpx.AsyncClient, api: TestServer
) -> None:
    saved = await admin.post("/api/v1/accounts/me/secrets", json={"key": "T", "value": SECRET})
    assert saved.status_code == 201, saved.text
    flow = f"""\
metadata: {{name: Call}}
nodes:
  call:
    type: http.request
    params:
      url: {api.url}/echo
      method: POST
      query: {{key: "${{secrets.T}}"}}
      body: {{token: "${{secrets.T}}"}}
      username: user
      password: ${{secrets.T}}
      auth: {{api_key: "${{secrets.T}}", key_name: X-Token}}
    next: {{success: keep}}
  keep:
    type: set
    params:
      values: {{sent: "${{shared.http_result.body.body}}", status: "${{input.status_code}}"}}
"""
    flow_id = await create_flow(admin, flow)
    execution_id = await start_run(admin, flow_id, {})
    run = await finished_run(admin, execution_id)
    assert run["status"] == "completed", run
    seen = next(r for r in reversed(api.seen) if r["path"] == "/echo")
    assert seen["headers"]["x-token"] == SECRET  # the server got the real value
    assert json.loads(seen["body"]) == {"token": SECRET}
    assert run["output"]["status"] == 200
    assert run["output"]["sent"] == '{"token": "***"}'
    answers = [run]
    for path in (f"/api/v1/executions/{execution_id}", f"/api/v1/executions/{execution_id}/logs"):
        response = await admin.get(path)
        assert response.status_code == 200
        answers.append(response.json())
    blob = json.dumps(answers).encode()
    assert leaks(blob, SECRET) == []
    assert leaks(database_bytes(server), SECRET) == []
    assert leaks(server.log.read_bytes(), SECRET) == []


async def test_cancelling_a_run_through_the_api_aborts_its_request(
    admin: httpx.AsyncClient, api: TestServer
) -> None:
    api.holding.clear()
    api.disconnected.clear()
    flow = one_request("Hold", f"{api.url}/hold")
    execution_id = await start_run(admin, await create_flow(admin, flow), {})
    assert await asyncio.to_thread(api.holding.wait, HANG_GUARD)
    canceled = await admin.post(f"/api/v1/executions/{execution_id}/cancel")
    assert canceled.status_code == 200, canceled.text
    assert await asyncio.to_thread(api.disconnected.wait, HANG_GUARD)  # the server saw it go
    assert (await finished_run(admin, execution_id))["status"] == "canceled"


async def test_a_server_with_default_settings_refuses_loopback(
    tmp_path_factory: pytest.TempPathFactory, api: TestServer
) -> None:
    default = Server(tmp_path_factory.mktemp("default"))
    default.env.pop("FLOWRUNNER_HTTP_ALLOW_PRIVATE", None)
    default.env.pop("FLOWRUNNER_HTTP_ALLOW", None)
    with default:
        async with default.client() as client:
            flow = one_request("Local", f"{api.url}/echo")
            before = len(api.seen)
            run = await finished_run(
                client, await start_run(client, await create_flow(client, flow), {})
            )
    assert run["status"] == "failed", run
    assert run["error"]["node_id"] == "get"
    assert "refused to connect to '127.0.0.1': a loopback address" in run["error"]["message"]
    assert len(api.seen) == before
