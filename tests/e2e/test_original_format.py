"""Through a real server, flows in the original flowrunner's format: its
``shared["<kind>_result"]`` keys, and the fork's ``split``/``join`` fan-out and fan-in."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.e2e.server import Server

pytestmark = pytest.mark.slow

RESULT_KEYS = """\
metadata: {name: Result keys}
nodes:
  keep:
    type: set
    params: {values: {token: "${secrets.SHOP_TOKEN}", n: "${input.n}"}}
    next: {default: pause}
  pause:
    type: wait
    params: {type: timer, duration: 0}
    next: {default: use}
  use:
    type: set
    params:
      values:
        via_kind: "${shared.timer_result.n}"
        via_result: "${shared.result.n}"
        token_seen: "${shared.timer_result.token}"
"""


@pytest.fixture
async def client(server: Server, token: str) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=30) as http:
        yield http


async def run_flow(client: httpx.AsyncClient, yaml: str, run_input: Any) -> dict[str, Any]:
    created = await client.post(
        "/api/v1/flows", content=yaml, headers={"content-type": "application/yaml"}
    )
    assert created.status_code == 201, created.text
    started = await client.post(
        f"/api/v1/flows/{created.json()['id']}/run",
        json={"input": run_input},
        params={"wait": "30s"},
    )
    assert started.status_code == 200, started.text
    body: dict[str, Any] = started.json()
    return body


async def test_a_nodes_output_is_also_shared_kind_result_and_secrets_stay_masked(
    client: httpx.AsyncClient,
) -> None:
    put = await client.put("/api/v1/accounts/me/secrets/SHOP_TOKEN", json={"value": "tok-9f8e7d"})
    assert put.status_code in (200, 201), put.text
    run = await run_flow(client, RESULT_KEYS, {"n": 7})
    assert run["status"] == "completed", run
    assert run["output"]["via_kind"] == 7
    assert run["output"]["via_result"] == 7
    assert run["output"]["token_seen"] != "tok-9f8e7d"
    events = await client.get(f"/api/v1/executions/{run['id']}/events")
    assert events.status_code == 200, events.text
    assert "tok-9f8e7d" not in events.text
    assert "tok-9f8e7d" not in repr(run)
