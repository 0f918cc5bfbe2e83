"""Durable waits through a real ``flowrunner serve``: signals, one-time resume links, timeouts,
long delays, and waiting runs that survive ``kill -9``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import HANG_GUARD
from tests.e2e.server import Server, create_flow, run_in_status, start_run, stored_events

# Every delay over a second waits durably; the waker looks five times a second.
DURABLE: dict[str, Any] = {"durable_wait_threshold_seconds": 1, "waker_tick_seconds": 0.2}

APPROVAL = """metadata: {name: Approval}
nodes:
  ask:
    type: log
    params: {message: "${results.approve.resume_url}"}
    next: {default: approve}
  approve:
    type: wait_for
    params:
      name: decision
      schema:
        type: object
        required: [decision]
        properties: {decision: {enum: [approve, reject]}}
    next: {default: route}
  route:
    type: switch
    params: {value: "${input.decision}", cases: {approve: approved, reject: rejected}}
    next: {approved: yes, rejected: no}
  "yes": {type: set, params: {values: {outcome: approved}}}
  "no": {type: set, params: {values: {outcome: rejected}}}
"""

TIMEOUT = """metadata: {name: Timeout}
nodes:
  approve:
    type: wait_for
    params: {name: decision, timeout: 1s}
    next: {default: decided, timeout: late}
  decided: {type: set, params: {values: {outcome: decided}}}
  late: {type: set, params: {values: {outcome: late, link: "${input.resume_url}"}}}
"""

NO_TIMEOUT_EDGE = """metadata: {name: Timeout without edge}
nodes:
  approve: {type: wait_for, params: {name: decision, timeout: 1s}}
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with Server(
        tmp_path_factory.mktemp("waits"),
        lease_ttl_seconds=2,
        recovery_interval_seconds=0.5,
        **DURABLE,
    ) as running:
        yield running


@pytest.fixture
async def client(server: Server) -> AsyncIterator[httpx.AsyncClient]:
    async with server.client() as http:
        yield http


def node_steps(history: list[dict[str, Any]]) -> list[tuple[str, str, str | None]]:
    return [
        (e["data"]["node_id"], e["data"]["state"], e["data"].get("action"))
        for e in history
        if e["type"] == "node" and e["data"].get("state") in ("started", "finished", "failed")
    ]


def statuses(history: list[dict[str, Any]]) -> list[str]:
    """The statuses the run went through (the final event carries the last one)."""
    return [e["data"]["status"] for e in history if isinstance(e["data"].get("status"), str)]


async def resume_url(client: httpx.AsyncClient, execution_id: str) -> str:
    """The link the ``ask`` node logged."""
    logs = (await client.get(f"/api/v1/executions/{execution_id}/logs")).json()["items"]
    messages = [str(line["data"].get("message")) for line in logs]
    url: str = next(m for m in messages if "/api/v1/resume/" in m)
    return url


async def test_a_signal_resumes_the_run_with_its_payload_and_a_bad_payload_is_422(
    client: httpx.AsyncClient,
) -> None:
    flow_id = await create_flow(client, APPROVAL)
    run_id = await start_run(client, flow_id, {})
    waiting = await run_in_status(client, run_id, "waiting")
    assert waiting["waiting_for"] == {"node_id": "approve", "kind": "signal", "signal": "decision"}
    assert waiting["wake_at"] is None  # no timeout: only the signal wakes it
    listed = await client.get("/api/v1/executions", params={"status": "waiting"})
    assert run_id in [r["id"] for r in listed.json()["items"]]

    signal = f"/api/v1/executions/{run_id}/signals/decision"
    bad = await client.post(signal, json={"decision": "maybe"})
    assert bad.status_code == 422, bad.text
    assert bad.json()["error"]["code"] == "invalid_payload"
    assert bad.json()["error"]["details"][0]["path"] == "decision"
    wrong = await client.post(f"/api/v1/executions/{run_id}/signals/other", json={})
    assert wrong.status_code == 409
    assert (await client.get(f"/api/v1/executions/{run_id}")).json()["status"] == "waiting"

    sent = await client.post(signal, json={"decision": "reject"})
    assert sent.status_code == 202, sent.text
    done = await run_in_status(client, run_id, "completed", "failed")
    assert done["status"] == "completed"
    assert done["output"] == {"outcome": "rejected"}
    again = await client.post(signal, json={"decision": "approve"})
    assert again.status_code == 409  # past the wait: signals are not buffered

    history = await stored_events(client, run_id)
    assert statuses(history) == ["running", "waiting", "running", "completed"]
    assert ("approve", "finished", None) in node_steps(history)
    assert [s[0] for s in node_steps(history) if s[1] == "finished"] == [
        "ask", "approve", "route", "no",
    ]  # fmt: skip


async def test_a_signal_sent_before_the_run_waits_is_a_409(client: httpx.AsyncClient) -> None:
    flow = APPROVAL.replace(
        "next: {default: approve}", "next: {default: nap}\n  nap: {type: delay, "
        "params: {duration: 2s}, next: {default: approve}}",
    )  # fmt: skip
    run_id = await start_run(client, await create_flow(client, flow), {})
    early = await client.post(
        f"/api/v1/executions/{run_id}/signals/decision", json={"decision": "approve"}
    )
    assert early.status_code == 409, early.text
    await run_in_status(client, run_id, "waiting")
    history_url = f"/api/v1/executions/{run_id}/signals/decision"
    # The nap waited durably first (two seconds is over the threshold), then the signal.
    run = (await client.get(f"/api/v1/executions/{run_id}")).json()
    assert run["waiting_for"]["node_id"] in ("nap", "approve")
    async with asyncio.timeout(HANG_GUARD):
        while run["waiting_for"] is None or run["waiting_for"]["node_id"] != "approve":
            await asyncio.sleep(0.05)
            run = (await client.get(f"/api/v1/executions/{run_id}")).json()
    assert (await client.post(history_url, json={"decision": "approve"})).status_code == 202
    done = await run_in_status(client, run_id, "completed", "failed")
    assert done["output"] == {"outcome": "approved"}
    assert statuses(await stored_events(client, run_id)) == [
        "running", "waiting", "running", "waiting", "running", "completed",
    ]  # fmt: skip


async def test_a_resume_link_works_once_and_only_for_its_own_run(
    client: httpx.AsyncClient,
) -> None:
    flow_id = await create_flow(client, APPROVAL)
    first, second = [await start_run(client, flow_id, {}) for _ in range(2)]
    for run_id in (first, second):
        await run_in_status(client, run_id, "waiting")
    link = await resume_url(client, first)
    other_link = await resume_url(client, second)
    assert link != other_link
    async with httpx.AsyncClient(timeout=HANG_GUARD) as anonymous:  # no account token
        page = await anonymous.get(link, params={"decision": "approve"})
        assert page.status_code == 200
        assert 'method="post"' in page.text  # a GET (a mail scanner) spends nothing
        assert (await client.get(f"/api/v1/executions/{first}")).json()["status"] == "waiting"

        invalid = await anonymous.post(link, params={"decision": "later"})
        assert invalid.status_code == 422  # the link stays usable
        used = await anonymous.post(link, params={"decision": "approve"})
        assert used.status_code == 202, used.text
        assert used.json()["execution_id"] == first
        again = await anonymous.post(link, params={"decision": "reject"})
        assert again.status_code == 410, again.text
        assert again.json()["error"]["code"] == "link_expired"

        token = link.rsplit("/", 1)[1]
        forged = token[:-6] + ("AAAAAA" if not token.endswith("AAAAAA") else "BBBBBB")
        assert (await anonymous.post(link.replace(token, forged), json={})).status_code == 404
        # The second run's wait is its own: the spent link never reaches it.
        assert (await client.get(f"/api/v1/executions/{second}")).json()["status"] == "waiting"
        # A form post (the confirm page's button) delivers its fields.
        by_form = await anonymous.post(other_link, data={"decision": "reject"})
        assert by_form.status_code == 202, by_form.text

    assert (await run_in_status(client, first, "completed"))["output"] == {"outcome": "approved"}
    assert (await run_in_status(client, second, "completed"))["output"] == {"outcome": "rejected"}


async def test_the_timeout_edge_is_taken_and_the_link_then_refused(
    client: httpx.AsyncClient,
) -> None:
    run_id = await start_run(client, await create_flow(client, TIMEOUT), {})
    waiting = await run_in_status(client, run_id, "waiting", "completed")
    assert waiting["status"] == "waiting"
    assert waiting["wake_at"] is not None
    done = await run_in_status(client, run_id, "completed", "failed")
    assert done["status"] == "completed"
    link = done["output"]["link"]
    assert done["output"]["outcome"] == "late"
    finished = [s for s in node_steps(await stored_events(client, run_id)) if s[1] == "finished"]
    assert finished == [("approve", "finished", "timeout"), ("late", "finished", None)]
    async with httpx.AsyncClient(timeout=HANG_GUARD) as anonymous:
        assert (await anonymous.post(link, json={"decision": "x"})).status_code == 410
    late = await client.post(f"/api/v1/executions/{run_id}/signals/decision", json={})
    assert late.status_code == 409


async def test_a_timeout_without_a_timeout_edge_fails_the_run(
    client: httpx.AsyncClient,
) -> None:
    run_id = await start_run(client, await create_flow(client, NO_TIMEOUT_EDGE), {})
    done = await run_in_status(client, run_id, "completed", "failed")
    assert done["status"] == "failed"
    assert done["error"]["code"] == "wait_timed_out"
    assert done["error"]["node_id"] == "approve"


async def test_a_waiting_run_can_be_canceled(client: httpx.AsyncClient) -> None:
    run_id = await start_run(client, await create_flow(client, APPROVAL), {})
    await run_in_status(client, run_id, "waiting")
    canceled = await client.post(f"/api/v1/executions/{run_id}/cancel")
    assert canceled.status_code == 200, canceled.text
    assert canceled.json()["status"] == "canceled"
    assert canceled.json()["wake_at"] is None
    late = await client.post(
        f"/api/v1/executions/{run_id}/signals/decision", json={"decision": "approve"}
    )
    assert late.status_code == 409


async def test_a_short_delay_stays_in_memory(client: httpx.AsyncClient) -> None:
    flow = """metadata: {name: Short}
nodes:
  nap: {type: delay, params: {duration: 200ms}, next: {default: done}}
  done: {type: set, params: {values: {ok: true}}}
"""
    run_id = await start_run(client, await create_flow(client, flow), {})
    await run_in_status(client, run_id, "completed")
    assert statuses(await stored_events(client, run_id)) == ["running", "completed"]


async def test_a_long_delay_until_a_date_time_from_an_expression_waits_durably(
    client: httpx.AsyncClient,
) -> None:
    flow = """metadata: {name: Until}
nodes:
  nap: {type: wait, params: {until: "${input.at}"}, next: {default: done}}
  done: {type: set, params: {values: {ok: true}}}
"""
    from datetime import UTC, datetime, timedelta

    at = (datetime.now(UTC) + timedelta(seconds=2)).isoformat()
    run_id = await start_run(client, await create_flow(client, flow), {"at": at})
    waiting = await run_in_status(client, run_id, "waiting", "completed")
    assert waiting["status"] == "waiting"
    assert waiting["wake_at"] is not None
    assert datetime.fromisoformat(waiting["wake_at"]) == datetime.fromisoformat(at)
    await run_in_status(client, run_id, "completed")
    assert statuses(await stored_events(client, run_id)) == [
        "running",
        "waiting",
        "running",
        "completed",
    ]
