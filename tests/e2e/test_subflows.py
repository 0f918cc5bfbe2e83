"""Stored sub-flows through a real ``flowrunner serve``: a ``flow`` node naming another flow of
the account runs it as a child execution linked to its parent, checked when saved, canceled
and resumed with its parent, never recursing, never reaching another account's flows."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import require_service
from tests.e2e.server import Server, start_run
from tests.storage.conftest import scratch_postgres_database

YAML = {"content-type": "application/yaml"}

CHILD = """metadata: {name: Grader}
nodes:
  grade:
    type: set
    params: {values: {score: "${input.n}"}}
    next: {default: pick}
  pick:
    type: switch
    params: {value: "${input.score}", cases: {"10": top}, default: low}
"""
PARENT = """metadata: {name: School}
nodes:
  call:
    type: flow
    params:
      flow: Grader
      input: {n: "${input.n}"}
    next: {top: praise, low: shrug}
  praise: {type: set, params: {values: {verdict: top, graded: "${results.call}"}}}
  shrug: {type: set, params: {values: {verdict: low}}}
"""
SLOW_CHILD = """metadata: {name: Sleeper}
nodes:
  nap: {type: delay, params: {duration: "${input.nap}"}, next: {default: done}}
  done: {type: set, params: {values: {slept: true}}}
"""
SLOW_PARENT = """metadata: {name: Waiter}
nodes:
  before: {type: set, params: {values: {step: 1}}, next: {default: call}}
  call:
    type: flow
    params: {flow: Sleeper, input: {nap: "${shared.nap}"}}
    next: {default: after}
  after: {type: set, params: {values: {child: "${results.call}"}}}
"""


UNTIL_CHILD = """metadata: {name: Sleeper}
nodes:
  nap: {type: delay, params: {until: "${input.until}"}, next: {default: done}}
  done: {type: set, params: {values: {slept: true}}}
"""
UNTIL_PARENT = SLOW_PARENT.replace(
    'input: {nap: "${shared.nap}"}', 'input: {until: "${shared.until}"}'
)


async def _save(client: httpx.AsyncClient, yaml: str, flow_id: str | None = None) -> str:
    if flow_id is None:
        response = await client.post("/api/v1/flows", content=yaml, headers=YAML)
    else:
        response = await client.put(f"/api/v1/flows/{flow_id}", content=yaml, headers=YAML)
    assert response.status_code in (200, 201), response.text
    saved: str = response.json()["id"]
    return saved


async def _refused(client: httpx.AsyncClient, yaml: str) -> dict[str, Any]:
    response = await client.post("/api/v1/flows", content=yaml, headers=YAML)
    assert response.status_code == 400, response.text
    error: dict[str, Any] = response.json()["error"]
    return error


async def _until(
    client: httpx.AsyncClient, path: str, done: Any, *, within: float = 60
) -> dict[str, Any]:
    """GET ``path`` until ``done(body)``; another process does the work, so we poll."""
    async with asyncio.timeout(within):
        while True:
            body: dict[str, Any] = (await client.get(path)).json()
            if done(body):
                return body
            await asyncio.sleep(0.1)


async def _napping_parent_and_child(
    client: httpx.AsyncClient, *, seconds: float
) -> tuple[str, str]:
    """Starts a parent whose child naps until ``seconds`` from now; both ids once the child
    runs."""
    await _save(client, UNTIL_CHILD)
    parent_flow = await _save(client, UNTIL_PARENT)
    wake = datetime.now(UTC) + timedelta(seconds=seconds)
    parent_id = await start_run(client, parent_flow, {"until": wake.isoformat()})
    children = await _until(
        client,
        f"/api/v1/executions/{parent_id}/children",
        lambda body: [c for c in body["items"] if c["status"] == "running"],
    )
    child_id: str = children["items"][0]["id"]
    return parent_id, child_id


def _ended(body: dict[str, Any]) -> bool:
    return body.get("status") in ("completed", "failed", "canceled")


async def test_a_stored_sub_flow_runs_as_a_child_execution_linked_to_its_parent(
    client: httpx.AsyncClient,
) -> None:
    child_id = await _save(client, CHILD)
    parent_id = await _save(client, PARENT)
    for n, verdict in ((10, "top"), (3, "low")):
        run = await client.post(
            f"/api/v1/flows/{parent_id}/run", params={"wait": "60s"}, json={"input": {"n": n}}
        )
        assert run.status_code == 200, run.text
        parent = run.json()
        assert parent["status"] == "completed", parent
        # The child's ending action routes the parent, as a file sub-flow's does.
        assert parent["output"]["verdict"] == verdict
        assert parent["parent_id"] is None

        children = (await client.get(f"/api/v1/executions/{parent['id']}/children")).json()
        assert len(children["items"]) == 1
        child = children["items"][0]
        assert child["parent_id"] == parent["id"]
        assert child["flow_id"] == child_id
        assert child["flow_version"] == 1
        assert child["status"] == "completed"
        assert child["input"] == {"n": n}
        # The child is an execution like any other: gettable and listed.
        got = (await client.get(f"/api/v1/executions/{child['id']}")).json()
        assert got["parent_id"] == parent["id"]
        listed = await client.get("/api/v1/executions", params={"parent_id": parent["id"]})
        assert [e["id"] for e in listed.json()["items"]] == [child["id"]]
    graded = parent["output"]
    assert graded == {"verdict": "low"}


async def test_a_parent_runs_the_pinned_version_of_its_child(client: httpx.AsyncClient) -> None:
    child_id = await _save(client, CHILD.replace("Grader", "Pinned"))
    parent = PARENT.replace("flow: Grader", "flow: Pinned\n      version: 1")
    parent_id = await _save(client, parent.replace("School", "Pinner"))
    await _save(client, CHILD.replace("Grader", "Pinned").replace('"10"', '"3"'), child_id)
    run = await client.post(
        f"/api/v1/flows/{parent_id}/run", params={"wait": "60s"}, json={"input": {"n": 3}}
    )
    assert run.json()["output"] == {"verdict": "low"}  # version 1: 3 is low
    child = (await client.get(f"/api/v1/executions/{run.json()['id']}/children")).json()
    assert child["items"][0]["flow_version"] == 1
    unpinned_id = await _save(client, PARENT.replace("Grader", "Pinned").replace("School", "Now"))
    run = await client.post(
        f"/api/v1/flows/{unpinned_id}/run", params={"wait": "60s"}, json={"input": {"n": 3}}
    )
    assert run.json()["output"]["verdict"] == "top"  # no version: the current one (2)


async def test_saving_a_flow_that_names_a_missing_flow_is_refused_at_its_line(
    client: httpx.AsyncClient,
) -> None:
    error = await _refused(client, PARENT.replace("flow: Grader", "flow: Nowhere"))
    problem = error["details"][0]
    assert problem["path"] == "nodes.call.params.flow"
    assert (problem["line"], problem["column"]) == (6, 13)
    assert "Nowhere" in problem["message"]
    await _save(client, CHILD.replace("Grader", "Versioned"))
    error = await _refused(
        client, PARENT.replace("flow: Grader", "flow: Versioned\n      version: 7")
    )
    assert "no version 7" in error["details"][0]["message"]


async def test_saving_a_flow_that_would_run_itself_is_refused(client: httpx.AsyncClient) -> None:
    error = await _refused(client, PARENT.replace("Grader", "Selfish").replace("School", "Selfish"))
    assert "recursion" in error["details"][0]["message"]

    a_id = await _save(client, CHILD.replace("Grader", "Alpha"))
    await _save(client, PARENT.replace("Grader", "Alpha").replace("School", "Beta"))
    # Alpha → Beta → Alpha: refused when the edit that closes the loop is saved.
    response = await client.put(
        f"/api/v1/flows/{a_id}",
        content=PARENT.replace("Grader", "Beta").replace("School", "Alpha"),
        headers=YAML,
    )
    assert response.status_code == 400, response.text
    problem = response.json()["error"]["details"][0]
    assert problem["message"] == "sub-flow recursion: Alpha → Beta → Alpha"
    assert problem["path"] == "nodes.call.params.flow"


async def test_a_loop_made_by_renaming_fails_the_run_instead_of_looping(
    client: httpx.AsyncClient,
) -> None:
    # Names change without a re-check (a rename is metadata only), so a cycle can still form:
    # Outer → Middle → "Spare", and Outer is then renamed Spare.
    spare_id = await _save(client, CHILD.replace("Grader", "Spare"))
    await _save(client, PARENT.replace("Grader", "Spare").replace("School", "Middle"))
    outer_id = await _save(client, PARENT.replace("Grader", "Middle").replace("School", "Outer"))
    renamed = await client.patch(f"/api/v1/flows/{spare_id}", json={"name": "Gone"})
    assert renamed.status_code == 200, renamed.text
    renamed = await client.patch(f"/api/v1/flows/{outer_id}", json={"name": "Spare"})
    assert renamed.status_code == 200, renamed.text

    run = await client.post(
        f"/api/v1/flows/{outer_id}/run", params={"wait": "60s"}, json={"input": {"n": 1}}
    )
    outer = run.json()
    assert outer["status"] == "failed", outer
    assert "recursion" in outer["error"]["message"]
    middle = (await client.get(f"/api/v1/executions/{outer['id']}/children")).json()["items"]
    assert [m["status"] for m in middle] == ["failed"]
    # The chain names each run's flow as its YAML does, and the flow the node named.
    assert "sub-flow recursion: Outer → Middle → Spare" in middle[0]["error"]["message"]
    # Middle never started a child: the loop was caught before the second Outer.
    deeper = await client.get(f"/api/v1/executions/{middle[0]['id']}/children")
    assert deeper.json()["items"] == []


async def test_another_accounts_flow_can_never_be_named(client: httpx.AsyncClient) -> None:
    created = await client.post(
        "/api/v1/accounts", json={"username": "eve", "password": "password-123"}
    )
    assert created.status_code == 201, created.text
    login = await client.post("/api/v1/login", json={"username": "eve", "password": "password-123"})
    eve = {"Authorization": f"Bearer {login.json()['token']}"}
    theirs = await client.post(
        "/api/v1/flows", content=CHILD.replace("Grader", "EveOnly"), headers={**YAML, **eve}
    )
    assert theirs.status_code == 201, theirs.text
    for name in ("EveOnly", theirs.json()["id"]):
        error = await _refused(client, PARENT.replace("Grader", name).replace("School", "Thief"))
        problem = error["details"][0]
        assert problem["path"] == "nodes.call.params.flow"
        assert "no flow named" in problem["message"]


async def test_cancelling_a_parent_cancels_its_running_child(client: httpx.AsyncClient) -> None:
    await _save(client, SLOW_CHILD)
    parent_flow = await _save(client, SLOW_PARENT)
    parent_id = await start_run(client, parent_flow, {"nap": "60s"})
    children = await _until(
        client,
        f"/api/v1/executions/{parent_id}/children",
        lambda body: [c for c in body["items"] if c["status"] == "running"],
    )
    child_id = children["items"][0]["id"]

    canceled = await client.post(f"/api/v1/executions/{parent_id}/cancel")
    assert canceled.status_code == 200, canceled.text
    assert canceled.json()["status"] == "canceled"
    child = (await client.get(f"/api/v1/executions/{child_id}")).json()
    assert child["status"] == "canceled"


async def test_cancelling_a_child_alone_fails_its_parents_flow_node(
    client: httpx.AsyncClient,
) -> None:
    await _save(client, SLOW_CHILD.replace("Sleeper", "Sleeper2"))
    parent_flow = await _save(
        client, SLOW_PARENT.replace("Sleeper", "Sleeper2").replace("Waiter", "W2")
    )
    parent_id = await start_run(client, parent_flow, {"nap": "60s"})
    children = await _until(
        client,
        f"/api/v1/executions/{parent_id}/children",
        lambda body: [c for c in body["items"] if c["status"] == "running"],
    )
    child_id = children["items"][0]["id"]
    assert (await client.post(f"/api/v1/executions/{child_id}/cancel")).status_code == 200
    parent = await _until(client, f"/api/v1/executions/{parent_id}", _ended)
    assert parent["status"] == "failed"
    assert "was canceled" in parent["error"]["message"]


async def _events(client: httpx.AsyncClient, execution_id: str) -> list[dict[str, Any]]:
    response = await client.get(f"/api/v1/executions/{execution_id}/events")
    frames = [f for f in response.text.split("\n\n") if f.strip()]
    return [json.loads(f.split("data: ", 1)[1]) for f in frames]


@pytest.fixture
def postgres_url() -> Iterator[str]:
    server = require_service("FLOWRUNNER_TEST_POSTGRES_URL", "PostgreSQL")
    # Not migrated up front: `flowrunner serve` migrates it (0001 → head) when it starts.
    yield from scratch_postgres_database(server, migrate=False)


@pytest.mark.slow
@pytest.mark.parametrize(
    "storage", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
async def test_after_kill_9_a_resumed_parent_resumes_its_child_instead_of_starting_another(
    tmp_path: Path, storage: str, request: pytest.FixtureRequest
) -> None:
    database: dict[str, str] = {}
    if storage == "postgres":
        database = {"storage": "postgres", "database_url": request.getfixturevalue("postgres_url")}
    server = Server(tmp_path, lease_ttl_seconds=2, recovery_interval_seconds=0.5, **database)
    try:
        server.start()
        async with server.client() as client:
            # An absolute wake-up time: far enough for the kill to land mid-nap however busy
            # the machine, and the resumed child waits only for what is left of it.
            parent_id, child_id = await _napping_parent_and_child(client, seconds=15)
        server.kill()  # mid-nap: parent at its flow node, child in its delay

        server.start()
        async with server.client() as client:
            parent = await _until(client, f"/api/v1/executions/{parent_id}", _ended)
            assert parent["status"] == "completed", parent
            assert parent["output"] == {"child": {"slept": True}}
            children = (await client.get(f"/api/v1/executions/{parent_id}/children")).json()
            assert [c["id"] for c in children["items"]] == [child_id]  # no duplicate
            assert children["items"][0]["status"] == "completed"
            child_events = await _events(client, child_id)
            assert any(e["data"].get("resumed") for e in child_events)
            finished = [
                e["data"]["node_id"] for e in child_events if e["data"].get("state") == "finished"
            ]
            assert finished.count("done") == 1
            parent_events = await _events(client, parent_id)
            assert any(e["data"].get("resumed") for e in parent_events)
    finally:
        server.kill()


async def test_a_secret_handed_to_a_child_is_never_stored_in_its_input(
    client: httpx.AsyncClient,
) -> None:
    put = await client.put("/api/v1/accounts/me/secrets/PIN", json={"value": "s3cr3t-pin-42"})
    assert put.status_code in (200, 201), put.text
    await _save(
        client,
        "metadata: {name: Keeper}\nnodes:\n"
        '  keep: {type: set, params: {values: {own: "${secrets.PIN}", given: "${input.pin}"}}}\n',
    )
    parent_flow = await _save(
        client,
        "metadata: {name: Giver}\nnodes:\n"
        '  call: {type: flow, params: {flow: Keeper, input: {pin: "${secrets.PIN}"}}}\n',
    )
    run = await client.post(f"/api/v1/flows/{parent_flow}/run", params={"wait": "60s"}, json={})
    assert run.json()["status"] == "completed", run.text
    (child,) = (await client.get(f"/api/v1/executions/{run.json()['id']}/children")).json()["items"]
    assert child["input"] == {"pin": "***"}
    assert child["output"] == {"own": "***", "given": "***"}  # outputs are masked as always
    assert "s3cr3t-pin-42" not in json.dumps(child)


async def test_each_retry_of_a_flow_node_runs_a_new_child(client: httpx.AsyncClient) -> None:
    await _save(
        client, "metadata: {name: Broke}\nnodes:\n  no: {type: fail, params: {message: nope}}\n"
    )
    parent_flow = await _save(
        client,
        "metadata: {name: Retrier}\nnodes:\n"
        "  call: {type: flow, params: {flow: Broke}, retry: {max_retries: 1}}\n",
    )
    run = await client.post(f"/api/v1/flows/{parent_flow}/run", params={"wait": "60s"}, json={})
    parent = run.json()
    assert parent["status"] == "failed", parent
    assert "sub-flow 'Broke'" in parent["error"]["message"]
    assert "nope" in parent["error"]["message"]
    children = (await client.get(f"/api/v1/executions/{parent['id']}/children")).json()["items"]
    assert [c["status"] for c in children] == ["failed", "failed"]
    assert len({c["id"] for c in children}) == 2


@pytest.mark.slow
async def test_a_graceful_shutdown_stops_parent_and_child_at_checkpoints_and_both_resume(
    tmp_path: Path,
) -> None:
    server = Server(
        tmp_path, lease_ttl_seconds=2, recovery_interval_seconds=0.5, shutdown_grace_seconds=30
    )
    try:
        server.start()
        async with server.client() as client:
            # The stop must land mid-nap however busy the machine: an absolute wake-up time
            # well ahead, within the shutdown grace period.
            parent_id, child_id = await _napping_parent_and_child(client, seconds=12)
        server.stop()  # SIGTERM mid-nap: the nap finishes, then both stop at a checkpoint

        server.start()
        async with server.client() as client:
            parent = await _until(client, f"/api/v1/executions/{parent_id}", _ended)
            assert parent["status"] == "completed", parent
            children = (await client.get(f"/api/v1/executions/{parent_id}/children")).json()
            assert [c["id"] for c in children["items"]] == [child_id]
            child_events = await _events(client, child_id)
            finished = [
                e["data"]["node_id"] for e in child_events if e["data"].get("state") == "finished"
            ]
            assert finished == ["nap", "done"]  # the nap ran once: resumed after it
            resumed = [e for e in child_events if e["data"].get("resumed")]
            assert [e["data"]["from_node"] for e in resumed] == ["done"]
    finally:
        server.kill()
