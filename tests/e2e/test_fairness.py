"""Through a real server with two accounts: one account saturating the executor (runs
sleeping in long delays) or the sandbox (endless scripts) does not keep the other's runs
from completing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from tests.e2e.server import Server, create_flow, start_run

pytestmark = pytest.mark.slow

SLEEPS = """metadata: {name: Sleeps an hour}
nodes:
  start: {type: set, params: {values: {n: "${input.n}"}}, next: {default: nap}}
  nap: {type: delay, params: {duration: 1h}}
"""

SPINS = """metadata: {name: Spins}
nodes:
  spin: {type: transform, params: {script: "while (true) {}"}}
"""

ONE_NODE = """metadata: {name: One node}
nodes:
  only: {type: set, params: {values: {done: true}}}
"""

TRANSFORM = """metadata: {name: Doubles}
nodes:
  double: {type: transform, params: {script: "const doubled = input.n * 2; return {doubled};"}}
"""

ACTIVE = ("queued", "running")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    # Small bounds so a few runs saturate them; endless scripts never time out on their own.
    with Server(
        tmp_path_factory.mktemp("fairness"),
        executor_concurrency=4,
        max_runs_per_account=2,
        script_workers=2,
        script_worker_share=0.5,
        script_timeout=600,
        shutdown_grace_seconds=1,
        # The hour-long delays sleep in memory here: what is tested is that a sleeping run
        # gives its slot back (a durable wait holds none at all: tests/e2e/test_waiting*.py).
        durable_wait_threshold_seconds=7200,
    ) as running:
        yield running


@pytest.fixture
async def accounts(server: Server) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    """Account A (a fresh user per test) and account B (another), each with its own client."""
    admin = {"Authorization": f"Bearer {server.token()}"}
    clients: list[httpx.AsyncClient] = []
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        for _ in range(2):
            username = f"user-{len(clients)}-{id(clients):x}"
            created = await http.post(
                "/api/v1/accounts",
                json={"username": username, "password": "password-123"},
                headers=admin,
            )
            assert created.status_code == 201, created.text
            login = await http.post(
                "/api/v1/login", json={"username": username, "password": "password-123"}
            )
            assert login.status_code == 200, login.text
            headers = {"Authorization": f"Bearer {login.json()['token']}"}
            clients.append(httpx.AsyncClient(base_url=server.url, headers=headers, timeout=60))
    try:
        yield clients[0], clients[1]
    finally:
        for client in clients:
            await client.aclose()


async def _views(client: httpx.AsyncClient, ids: list[str]) -> list[dict[str, Any]]:
    views = []
    for execution_id in ids:
        response = await client.get(f"/api/v1/executions/{execution_id}")
        assert response.status_code == 200, response.text
        views.append(response.json())
    return views


async def _until(client: httpx.AsyncClient, ids: list[str], ready: Any) -> list[dict[str, Any]]:
    views: list[dict[str, Any]] = []
    for _ in range(300):  # a hang guard, not a time limit
        views = await _views(client, ids)
        if ready(views):
            return views
        await asyncio.sleep(0.1)
    raise AssertionError(f"never ready: {[v['status'] for v in views]}")


async def _cancel_all(client: httpx.AsyncClient, ids: list[str]) -> None:
    for execution_id in ids:
        response = await client.post(f"/api/v1/executions/{execution_id}/cancel")
        assert response.status_code in (200, 409), response.text


async def _run_and_wait(client: httpx.AsyncClient, yaml: str, n: int) -> dict[str, Any]:
    flow_id = await create_flow(client, yaml)
    response = await client.post(f"/api/v1/flows/{flow_id}/run?wait=60s", json={"input": {"n": n}})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_runs_sleeping_in_a_long_delay_do_not_keep_another_accounts_run_queued(
    accounts: tuple[httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    a, b = accounts
    sleeps = await create_flow(a, SLEEPS)
    # More than the process runs at once (4), and than one account may run at once (2).
    sleeping = [await start_run(a, sleeps, {"n": n}) for n in range(10)]
    try:
        # Every one of them reaches its delay: a sleeping run holds no executor slot.
        await _until(a, sleeping, lambda vs: all(v["current_node"] == "nap" for v in vs))
        done = await _run_and_wait(b, ONE_NODE, 1)
        assert done["status"] == "completed", done
        assert done["output"] == {"done": True}
        # B's run finished while all of A's still sleep.
        assert [v["status"] for v in await _views(a, sleeping)] == ["running"] * 10
    finally:
        await _cancel_all(a, sleeping)


async def test_endless_scripts_of_one_account_do_not_keep_another_accounts_script_waiting(
    accounts: tuple[httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    a, b = accounts
    spins = await create_flow(a, SPINS)
    spinning = [await start_run(a, spins, {"n": n}) for n in range(6)]
    try:
        # A may run two at once (FLOWRUNNER_MAX_RUNS_PER_ACCOUNT), the rest wait queued;
        # its two scripts queue for the one sandbox worker that is A's share of two.
        views = await _until(
            a,
            spinning,
            lambda vs: (
                sum(v["status"] == "running" and v["current_node"] == "spin" for v in vs) == 2
            ),
        )
        assert sorted(v["status"] for v in views) == ["queued"] * 4 + ["running"] * 2
        done = await _run_and_wait(b, TRANSFORM, 21)
        assert done["status"] == "completed", done
        assert done["output"] == {"doubled": 42}
        # B's script ran while A's still spin. (A's second running run may give up waiting
        # for A's worker after 30 s and fail; none of A's can complete.)
        statuses = [v["status"] for v in await _views(a, spinning)]
        assert "completed" not in statuses
        assert "running" in statuses
    finally:
        await _cancel_all(a, spinning)
