"""Outbound webhooks through a real ``flowrunner serve`` and receivers on 127.0.0.1: signed
events the ``standardwebhooks`` library verifies, retries with a (shortened) backoff, the
outbox surviving ``kill -9``, dead letters with manual redelivery, and secret rotation."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from standardwebhooks import Webhook

from tests.conftest import HANG_GUARD
from tests.e2e.flows import STEPS
from tests.e2e.leaks import database_bytes, leaks
from tests.e2e.server import Server, create_flow, start_run
from tests.webhook_receiver import Receiver, receiving

pytestmark = pytest.mark.slow

# Short delays so retries happen within a test; the order and spacing still show.
SCHEDULE = [0.3, 0.6, 1.2]
SETTINGS = {
    "http_allow": "127.0.0.1",
    "webhook_retry_schedule": ",".join(f"{s}s" for s in SCHEDULE),
    "webhook_poll_seconds": "0.1",
}
OK_FLOW = "metadata: {name: Fine}\nnodes:\n  a: {type: set, params: {values: {x: 1}}}\n"
BAD_FLOW = "metadata: {name: Broken}\nnodes:\n  a: {type: fail, params: {message: boom}}\n"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with Server(tmp_path_factory.mktemp("webhooks"), **SETTINGS) as running:
        yield running


@pytest.fixture
async def admin(server: Server) -> AsyncIterator[httpx.AsyncClient]:
    async with server.client() as client:
        yield client


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with receiving() as running:
        yield running


async def endpoint(client: httpx.AsyncClient, url: str, **fields: Any) -> dict[str, Any]:
    response = await client.post("/api/v1/webhooks", json={"url": url, **fields})
    assert response.status_code == 201, response.text
    made: dict[str, Any] = response.json()
    return made


async def delivery_where(
    client: httpx.AsyncClient, endpoint_id: str, status: str, count: int = 1
) -> list[dict[str, Any]]:
    async with asyncio.timeout(HANG_GUARD):
        while True:
            response = await client.get(
                f"/api/v1/webhooks/{endpoint_id}/deliveries", params={"status": status}
            )
            items: list[dict[str, Any]] = response.json()["items"]
            if len(items) >= count:
                return items
            await asyncio.sleep(0.05)


def verified(secret: str, body: bytes, headers: dict[str, str]) -> Any:
    """What the receiver's own library makes of the message (raises when not authentic)."""
    return Webhook(secret).verify(body, headers)


async def test_completed_and_failed_runs_deliver_events_the_library_verifies(
    admin: httpx.AsyncClient, receiver: Receiver
) -> None:
    hook = await endpoint(
        admin, f"{receiver.url}/runs", events=["execution.completed", "execution.failed"]
    )
    assert hook["secret"].startswith("whsec_")
    listed = (await admin.get(f"/api/v1/webhooks/{hook['id']}")).json()
    assert "secret" not in listed or listed["secret"] is None  # shown once only
    ok, bad = await create_flow(admin, OK_FLOW), await create_flow(admin, BAD_FLOW)
    done = await start_run(admin, ok, {})
    failed = await start_run(admin, bad, {})
    arrived = receiver.wait_for(2)
    by_type = {r.json()["type"]: r for r in arrived}
    completed = verified(hook["secret"], by_type["execution.completed"].body,
                         by_type["execution.completed"].headers)  # fmt: skip
    assert completed["data"]["execution_id"] == done
    assert completed["data"]["output"] == {"x": 1}
    assert completed["data"]["flow_name"] == "Fine"
    failure = verified(hook["secret"], by_type["execution.failed"].body,
                       by_type["execution.failed"].headers)  # fmt: skip
    assert failure["data"]["execution_id"] == failed
    assert "boom" in str(failure["data"]["error"])
    with pytest.raises(Exception):  # noqa: B017, PT011  # any refusal: a wrong secret never verifies
        verified("whsec_" + "A" * 32, arrived[0].body, arrived[0].headers)
    await admin.delete(f"/api/v1/webhooks/{hook['id']}")


async def test_flow_metadata_webhook_is_signed_with_the_vault_secret(
    admin: httpx.AsyncClient, receiver: Receiver
) -> None:
    secret = "whsec_" + "c2VjcmV0LWZvci10aGUtZmxvdy13ZWJob29r"
    saved = await admin.post("/api/v1/accounts/me/secrets", json={"key": "HOOK", "value": secret})
    assert saved.status_code == 201, saved.text
    flow = f"""\
metadata:
  name: Notified
  webhooks:
    - url: {receiver.url}/flow
      events: [execution.completed]
      secret: "${{secrets.HOOK}}"
      headers: {{X-Team: ops}}
nodes:
  a: {{type: set, params: {{values: {{y: 2}}}}}}
"""
    run = await start_run(admin, await create_flow(admin, flow), {})
    [got] = receiver.wait_for(1)
    event = verified(secret, got.body, got.headers)
    assert event["type"] == "execution.completed"
    assert event["data"]["execution_id"] == run
    assert got.headers["X-Team"] == "ops"
    listed = (await admin.get("/api/v1/webhooks")).json()["items"]
    [mine] = [e for e in listed if e["source"] == "flow" and e["url"] == f"{receiver.url}/flow"]
    assert mine["headers"] == {"X-Team": "***"} or set(mine["headers"]) == {"X-Team"}


async def test_flow_created_updated_deleted_events_are_delivered_signed(
    admin: httpx.AsyncClient, receiver: Receiver
) -> None:
    events = ["flow.created", "flow.updated", "flow.deleted"]
    hook = await endpoint(admin, f"{receiver.url}/flows", events=events)
    flow_id = await create_flow(admin, OK_FLOW)
    saved = await admin.put(
        f"/api/v1/flows/{flow_id}",
        content=OK_FLOW.replace("Fine", "Finer"),
        headers={"content-type": "application/yaml"},
    )
    assert saved.status_code == 200, saved.text
    patched = await admin.patch(f"/api/v1/flows/{flow_id}", json={"tags": ["ops"]})
    assert patched.status_code == 200, patched.text
    assert (await admin.delete(f"/api/v1/flows/{flow_id}")).status_code == 204
    arrived = receiver.wait_for(4)
    messages = [verified(hook["secret"], r.body, r.headers) for r in arrived]
    got = sorted(
        (m["data"]["version"], m["type"], m["data"]["flow_name"], tuple(m["data"]["tags"]))
        for m in messages
    )
    assert got == [
        (1, "flow.created", "Fine", ()),
        (2, "flow.deleted", "Finer", ("ops",)),
        (2, "flow.updated", "Finer", ()),
        (2, "flow.updated", "Finer", ("ops",)),
    ]
    assert {m["data"]["flow_id"] for m in messages} == {flow_id}
    await admin.delete(f"/api/v1/webhooks/{hook['id']}")


async def test_receiver_failing_three_times_gets_the_event_on_the_fourth_attempt(
    admin: httpx.AsyncClient, receiver: Receiver
) -> None:
    receiver.answers = [500, 500, 500]
    hook = await endpoint(admin, f"{receiver.url}/flaky", events=["execution.completed"])
    await start_run(admin, await create_flow(admin, OK_FLOW), {})
    arrived = receiver.wait_for(4)
    assert len({r.headers["webhook-id"] for r in arrived}) == 1  # one message, four attempts
    for received in arrived:
        verified(hook["secret"], received.body, received.headers)
    [done] = await delivery_where(admin, hook["id"], "delivered")
    detail = (await admin.get(f"/api/v1/webhooks/deliveries/{done['id']}")).json()
    assert detail["attempts"] == 4
    history = detail["attempt_history"]
    assert [a["status_code"] for a in history] == [500, 500, 500, 200]
    # The backoff shows: after each failure the wait drawn is full jitter within its step
    # ([0, d]), and the next attempt did not leave before it.
    at = [datetime.fromisoformat(a["at"]) for a in history]
    due = [datetime.fromisoformat(a["next_attempt_at"]) for a in history[:-1]]
    waits = [(d - a).total_seconds() for a, d in zip(at, due, strict=False)]
    assert all(0 <= w <= step + 1e-6 for w, step in zip(waits, SCHEDULE, strict=True)), waits
    assert all(later >= d for later, d in zip(at[1:], due, strict=True))
    assert history[-1]["next_attempt_at"] is None
    assert all(a["latency_ms"] >= 0 for a in detail["attempt_history"])
    await admin.delete(f"/api/v1/webhooks/{hook['id']}")


async def test_dead_letter_then_manual_redelivery_and_redeliver_all_failed(
    admin: httpx.AsyncClient, receiver: Receiver
) -> None:
    receiver.answers = [503] * 4 + [410]  # 4 attempts: dead; a 410 is not retried: dead
    hook = await endpoint(admin, f"{receiver.url}/dead", events=["webhook.test"])
    test = await admin.post(f"/api/v1/webhooks/{hook['id']}/test")
    assert test.status_code == 202, test.text
    [dead] = await delivery_where(admin, hook["id"], "dead")
    assert dead["attempts"] == len(SCHEDULE) + 1
    assert dead["last_status_code"] == 503
    again = await admin.post(f"/api/v1/webhooks/deliveries/{dead['id']}/redeliver")
    assert again.status_code == 202, again.text
    receiver.wait_for(5)
    assert receiver.received[3].headers["webhook-id"] != receiver.received[4].headers["webhook-id"]
    dead_both = await delivery_where(admin, hook["id"], "dead", count=2)
    assert [d["last_status_code"] for d in dead_both] == [410, 503]
    bulk = await admin.post(
        f"/api/v1/webhooks/{hook['id']}/redeliver-failed", json={"since": dead["created_at"]}
    )
    assert bulk.status_code == 202, bulk.text
    assert bulk.json()["count"] == 2
    arrived = receiver.wait_for(7)
    assert [verified(hook["secret"], r.body, r.headers)["type"] for r in arrived[5:]] == [
        "webhook.test"
    ] * 2
    await delivery_where(admin, hook["id"], "delivered", count=2)
    await admin.delete(f"/api/v1/webhooks/{hook['id']}")


async def test_rotation_sends_both_signatures_each_verifying(
    admin: httpx.AsyncClient, receiver: Receiver
) -> None:
    hook = await endpoint(admin, f"{receiver.url}/rotate", events=["webhook.test"])
    rotated = await admin.post(f"/api/v1/webhooks/{hook['id']}/rotate-secret")
    assert rotated.status_code == 200, rotated.text
    new_secret = rotated.json()["secret"]
    assert new_secret != hook["secret"]
    assert rotated.json()["secret_rotating_until"] is not None
    await admin.post(f"/api/v1/webhooks/{hook['id']}/test")
    [got] = receiver.wait_for(1)
    assert len(got.headers["webhook-signature"].split(" ")) == 2
    verified(hook["secret"], got.body, got.headers)  # receivers not yet updated
    verified(new_secret, got.body, got.headers)  # receivers already updated
    await admin.delete(f"/api/v1/webhooks/{hook['id']}")


async def test_started_and_canceled_runs_send_their_events(
    admin: httpx.AsyncClient, receiver: Receiver
) -> None:
    hook = await endpoint(
        admin, f"{receiver.url}/life", events=["execution.started", "execution.canceled"]
    )
    run = await start_run(admin, await create_flow(admin, STEPS), {"name": "x", "nap": 60})
    [started] = receiver.wait_for(1)
    assert verified(hook["secret"], started.body, started.headers)["type"] == "execution.started"
    canceled = await admin.post(f"/api/v1/executions/{run}/cancel")
    assert canceled.status_code in (200, 202), canceled.text
    arrived = receiver.wait_for(2)
    event = verified(hook["secret"], arrived[1].body, arrived[1].headers)
    assert (event["type"], event["data"]["execution_id"]) == ("execution.canceled", run)
    await admin.delete(f"/api/v1/webhooks/{hook['id']}")


async def test_node_events_name_the_node_with_its_output_or_error(
    admin: httpx.AsyncClient, receiver: Receiver
) -> None:
    hook = await endpoint(admin, f"{receiver.url}/nodes", events=["node.completed", "node.failed"])
    await start_run(admin, await create_flow(admin, OK_FLOW), {})
    await start_run(admin, await create_flow(admin, BAD_FLOW), {})
    arrived = receiver.wait_for(2)
    events = {e["type"]: e["data"] for e in (verified(hook["secret"], r.body, r.headers)
                                             for r in arrived)}  # fmt: skip
    assert events["node.completed"]["node_id"] == "a"
    assert events["node.completed"]["output"] == {"x": 1}
    assert "boom" in str(events["node.failed"]["error"])
    await admin.delete(f"/api/v1/webhooks/{hook['id']}")


async def test_no_endpoint_secret_reaches_the_database_the_log_or_the_payloads(
    server: Server, admin: httpx.AsyncClient, receiver: Receiver
) -> None:
    vault_value = "whsec_" + "dmF1bHQtaGVsZC1mbG93LXdlYmhvb2stc2VjcmV0"
    await admin.post("/api/v1/accounts/me/secrets", json={"key": "LEAK", "value": vault_value})
    hook = await endpoint(
        admin, f"{receiver.url}/leak", events=["execution.completed"],
        headers={"Authorization": "Bearer header-t0ken-value"},
    )  # fmt: skip
    rotated = (await admin.post(f"/api/v1/webhooks/{hook['id']}/rotate-secret")).json()
    flow = f"""\
metadata:
  name: Leaky
  webhooks: [{{url: "{receiver.url}/leak-flow", secret: "${{secrets.LEAK}}"}}]
nodes:
  a: {{type: set, params: {{values: {{x: 1}}}}}}
"""
    await start_run(admin, await create_flow(admin, flow), {})
    arrived = receiver.wait_for(2)
    listed = (await admin.get("/api/v1/webhooks")).text
    stored = database_bytes(server)
    log = server.log.read_bytes()
    for value in (hook["secret"], rotated["secret"], vault_value, "header-t0ken-value"):
        assert leaks(stored, value) == [], value
        assert leaks(log, value) == [], value
        assert value not in listed
        for received in arrived:
            assert value.encode() not in received.body
    await admin.delete(f"/api/v1/webhooks/{hook['id']}")


async def test_refused_destination_is_a_clear_400(admin: httpx.AsyncClient) -> None:
    response = await admin.post("/api/v1/webhooks", json={"url": "http://169.254.169.254/x"})
    assert response.status_code == 400
    assert "169.254.169.254" in response.json()["error"]["message"]


def test_deliveries_due_when_the_server_is_killed_all_arrive_after_restart(
    tmp_path: Path,
) -> None:
    runs = 5
    settings = {**SETTINGS, "webhook_retry_schedule": "5s"}
    with receiving() as receiver, Server(tmp_path, **settings) as server:
        receiver.answers = [503] * runs  # every first attempt fails: all are due again within 5 s
        executions = asyncio.run(_runs_with_a_failed_first_attempt(server, receiver, runs))
        server.kill()  # kill -9 while every delivery is due for its retry
        server.start()
        arrived = receiver.wait_for(2 * runs)
        delivered = {r.headers["webhook-id"] for r in arrived[runs:]}
        assert len(delivered) == runs  # every one arrived (duplicates only if re-claimed)
        assert {r.json()["data"]["execution_id"] for r in arrived} == set(executions)


async def _runs_with_a_failed_first_attempt(
    server: Server, receiver: Receiver, runs: int
) -> list[str]:
    """Starts ``runs`` runs; returns once each one's delivery has failed once and is pending
    (recorded: no delivery is mid-send, so none waits for a lease to expire)."""
    async with server.client() as client:
        hook = await endpoint(client, f"{receiver.url}/crash", events=["execution.completed"])
        flow = await create_flow(client, OK_FLOW)
        executions = [await start_run(client, flow, {}) for _ in range(runs)]
        async with asyncio.timeout(HANG_GUARD):
            while True:
                response = await client.get(
                    f"/api/v1/webhooks/{hook['id']}/deliveries", params={"status": "pending"}
                )
                items = response.json()["items"]
                if len(items) == runs and all(d["attempts"] == 1 for d in items):
                    return executions
                await asyncio.sleep(0.02)


def test_two_server_processes_send_each_delivery_once(tmp_path: Path) -> None:
    runs = 10
    with (
        receiving() as receiver,
        Server(tmp_path, serve_args=["--workers", "2"], **SETTINGS) as server,
    ):
        delivered = asyncio.run(_delivered_once_each(server, receiver, runs))
        assert len(delivered) == runs
        assert all(d["attempts"] == 1 for d in delivered)
        assert len(receiver.received) == runs  # recorded delivered after arriving: no extra
        assert len({r.headers["webhook-id"] for r in receiver.received}) == runs


async def _delivered_once_each(
    server: Server, receiver: Receiver, runs: int
) -> list[dict[str, Any]]:
    async with server.client() as client:
        hook = await endpoint(client, f"{receiver.url}/pair", events=["execution.completed"])
        flow = await create_flow(client, OK_FLOW)
        for _ in range(runs):
            await start_run(client, flow, {})
        return await delivery_where(client, hook["id"], "delivered", count=runs)
