"""Conformance: a run's webhook deliveries know their run, and go with it when it is deleted
(retention's ``ExecutionStore.delete``), with their attempts' detail in the KV store."""

from __future__ import annotations

from datetime import timedelta

import pytest

from flowrunner.errors import NotFound
from flowrunner.storage import Account, NewDelivery, NewEvent, Store
from flowrunner.storage.records import (
    ATTEMPTS_NAMESPACE,
    ExecutionStatus,
    WebhookDelivery,
    attempts_prefix,
)
from tests.storage.backends import FakeClock

FINISHED: list[ExecutionStatus] = ["completed", "failed", "canceled"]


async def _endpoint(store: Store, account: Account) -> str:
    made = await store.webhooks.create_endpoint(account.id, url="https://x.test/h", secret="s")
    return made.id


async def _finished_run(store: Store, account: Account, endpoint: str) -> str:
    """A completed run with two deliveries: one from a step, one from its final status."""
    run = (await store.executions.create(account.id, flow_id="f", flow_version=1)).id
    step = NewDelivery(endpoint, "node.completed", {"node": "a"})
    await store.executions.record_step(
        account.id, run, [NewEvent("node", {"node_id": "a"})], outbox=[step]
    )
    done = NewDelivery(endpoint, "execution.completed", {"run": run})
    await store.executions.update(account.id, run, status="completed", outbox=[done])
    return run


async def _deliveries_of(store: Store, account: Account, run: str) -> list[WebhookDelivery]:
    page = await store.webhooks.list_deliveries(account.id, limit=100)
    return [d for d in page.items if d.execution_id == run]


async def _send_all(store: Store, account: Account, *, delivered: bool) -> None:
    """Finish every due delivery (delivered, or dead with no retry), each with one attempt's
    detail saved as the dispatcher saves it."""
    for delivery in await store.webhooks.admin_claim_due(worker="w", limit=100):
        await store.webhooks.record_attempt(
            account.id, delivery.id, worker="w", delivered=delivered
        )
        key = f"{attempts_prefix(delivery.id)}0001"
        await store.kv.put(account.id, ATTEMPTS_NAMESPACE, key, {"n": 1}, ttl=timedelta(days=1))


async def _attempt_keys(store: Store, account: Account) -> set[str]:
    page = await store.kv.list(account.id, ATTEMPTS_NAMESPACE, limit=100)
    return {entry.key for entry in page.items}


async def test_deliveries_written_by_a_runs_changes_name_the_run_and_others_none(
    store: Store, account: Account
) -> None:
    endpoint = await _endpoint(store, account)
    run = await _finished_run(store, account, endpoint)
    test_send = await store.webhooks.enqueue(
        account.id, endpoint, event_type="webhook.test", payload={}
    )

    page = await store.webhooks.list_deliveries(account.id)
    assert sorted((d.event_type, d.execution_id) for d in page.items) == [
        ("execution.completed", run),
        ("node.completed", run),
        ("webhook.test", None),
    ]
    assert test_send.execution_id is None
    assert (await store.webhooks.get_delivery(account.id, test_send.id)).execution_id is None


@pytest.mark.parametrize("delivered", [True, False], ids=["delivered", "dead"])
async def test_deleting_a_run_takes_its_finished_deliveries_and_their_attempts(
    store: Store, account: Account, delivered: bool
) -> None:
    endpoint = await _endpoint(store, account)
    pruned = await _finished_run(store, account, endpoint)
    kept = await _finished_run(store, account, endpoint)
    manual = await store.webhooks.enqueue(
        account.id, endpoint, event_type="webhook.test", payload={}
    )
    await _send_all(store, account, delivered=delivered)
    gone = await _deliveries_of(store, account, pruned)
    stays = await _deliveries_of(store, account, kept)
    assert len(gone) == len(stays) == 2
    assert {d.status for d in gone + stays} == {"delivered" if delivered else "dead"}

    assert await store.executions.delete(account.id, [pruned], statuses=FINISHED) == [pruned]

    for delivery in gone:
        with pytest.raises(NotFound):
            await store.webhooks.get_delivery(account.id, delivery.id)
    # The other run's deliveries and the one of no run stay, with every attempt of theirs.
    for delivery in [*stays, manual]:
        assert (await store.webhooks.get_delivery(account.id, delivery.id)).id == delivery.id
    assert await _attempt_keys(store, account) == {
        f"{attempts_prefix(d.id)}0001" for d in [*stays, manual]
    }


async def test_a_run_with_a_delivery_still_to_send_is_kept_until_it_is_finished(
    store: Store, account: Account, clock: FakeClock
) -> None:
    endpoint = await _endpoint(store, account)
    run = await _finished_run(store, account, endpoint)
    # One delivery in flight (claimed), the other due: neither may be lost.
    await store.webhooks.admin_claim_due(worker="w", limit=1)

    assert await store.executions.delete(account.id, [run], statuses=FINISHED) == []
    assert (await store.executions.get(account.id, run)).status == "completed"
    assert {d.status for d in await _deliveries_of(store, account, run)} == {"pending"}

    clock.advance(timedelta(minutes=2))  # the claim expires: both are due again
    await _send_all(store, account, delivered=True)
    assert await store.executions.delete(account.id, [run], statuses=FINISHED) == [run]
    assert await _deliveries_of(store, account, run) == []
    assert await _attempt_keys(store, account) == set()
