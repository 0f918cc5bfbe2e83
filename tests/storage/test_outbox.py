"""Conformance: webhook events written with the execution state change that caused them."""

from __future__ import annotations

import pytest

from flowrunner.errors import Conflict, NotFound
from flowrunner.storage import Account, NewCheckpoint, NewDelivery, NewEvent, Store


async def _run(store: Store, account: Account) -> str:
    execution = await store.executions.create(account.id, flow_id="f", flow_version=1)
    return execution.id


async def _endpoint(store: Store, account: Account) -> str:
    made = await store.webhooks.create_endpoint(account.id, url="https://x.test/h", secret="s")
    return made.id


async def test_status_change_and_its_outbox_entries_are_written_together(
    store: Store, account: Account
) -> None:
    run = await _run(store, account)
    endpoint = await _endpoint(store, account)
    entry = NewDelivery(endpoint, "execution.completed", {"type": "execution.completed"})
    done = await store.executions.update(
        account.id, run, expected_status=["queued"], status="completed", outbox=[entry]
    )
    assert done.status == "completed"
    page = await store.webhooks.list_deliveries(account.id, endpoint_id=endpoint)
    assert [(d.event_type, d.status, d.payload) for d in page.items] == [
        ("execution.completed", "pending", {"type": "execution.completed"})
    ]


async def test_refused_status_change_writes_no_outbox_entry(store: Store, account: Account) -> None:
    run = await _run(store, account)
    endpoint = await _endpoint(store, account)
    entry = NewDelivery(endpoint, "execution.failed", {"n": 1})
    with pytest.raises(Conflict):
        await store.executions.update(
            account.id, run, expected_status=["running"], status="failed", outbox=[entry]
        )
    assert (await store.webhooks.list_deliveries(account.id)).items == []
    assert (await store.executions.get(account.id, run)).status == "queued"


async def test_entry_for_a_deleted_endpoint_is_dropped_not_a_refused_change(
    store: Store, account: Account
) -> None:
    run = await _run(store, account)
    kept = await _endpoint(store, account)
    gone = await _endpoint(store, account)
    await store.webhooks.delete_endpoint(account.id, gone)
    outbox = [
        NewDelivery(gone, "execution.started", {}),
        NewDelivery(kept, "execution.started", {}),
    ]
    started = await store.executions.update(account.id, run, status="running", outbox=outbox)
    assert started.status == "running"
    page = await store.webhooks.list_deliveries(account.id)
    assert [d.endpoint_id for d in page.items] == [kept]


async def test_a_step_and_its_outbox_entries_are_written_together(
    store: Store, account: Account
) -> None:
    run = await _run(store, account)
    endpoint = await _endpoint(store, account)
    events = [NewEvent("node", {"node_id": "a", "state": "finished"})]
    entry = NewDelivery(endpoint, "node.completed", {"type": "node.completed"})
    checkpoint = NewCheckpoint(shared={}, next_node="b", results={"a": 1})
    written = await store.executions.record_step(
        account.id, run, events, checkpoint=checkpoint, outbox=[entry]
    )
    assert [e.seq for e in written] == [1]
    page = await store.webhooks.list_deliveries(account.id, endpoint_id=endpoint)
    assert [(d.event_type, d.status) for d in page.items] == [("node.completed", "pending")]
    again = await store.executions.record_step(
        account.id, run, events, outbox=[NewDelivery(endpoint, "node.failed", {})]
    )
    assert [e.seq for e in again] == [2]
    page = await store.webhooks.list_deliveries(account.id, endpoint_id=endpoint)
    assert sorted(d.event_type for d in page.items) == ["node.completed", "node.failed"]


async def test_a_step_of_a_missing_execution_writes_no_outbox_entry(
    store: Store, account: Account
) -> None:
    endpoint = await _endpoint(store, account)
    events = [NewEvent("node", {"node_id": "a"})]
    checkpoint = NewCheckpoint(shared={}, next_node="b", results={})
    with pytest.raises(NotFound):
        await store.executions.record_step(
            account.id, "missing", events, checkpoint=checkpoint,
            outbox=[NewDelivery(endpoint, "node.completed", {})],
        )  # fmt: skip
    assert (await store.webhooks.list_deliveries(account.id)).items == []


# --- flow changes: flow.created / flow.updated / flow.deleted ---------------------------------


async def _events(store: Store, account: Account) -> list[tuple[str, object]]:
    page = await store.webhooks.list_deliveries(account.id)
    return sorted((d.event_type, d.payload) for d in page.items)


async def test_a_flow_version_and_its_outbox_entries_are_written_together(
    store: Store, account: Account
) -> None:
    endpoint = await _endpoint(store, account)
    flow = await store.flows.create(account.id, name="f")
    created = NewDelivery(endpoint, "flow.created", {"v": 1})
    first = await store.flows.add_version(
        account.id, flow.id, yaml="a", expected_current=0, outbox=[created]
    )
    assert first.number == 1
    assert await _events(store, account) == [("flow.created", {"v": 1})]
    with pytest.raises(Conflict):  # a refused version writes no entry
        await store.flows.add_version(
            account.id, flow.id, yaml="b", expected_current=0,
            outbox=[NewDelivery(endpoint, "flow.updated", {"v": 2})],
        )  # fmt: skip
    assert await _events(store, account) == [("flow.created", {"v": 1})]
    assert (await store.flows.get(account.id, flow.id)).current_version == 1


async def test_flow_metadata_change_and_delete_carry_their_outbox_entries(
    store: Store, account: Account
) -> None:
    endpoint = await _endpoint(store, account)
    flow = await store.flows.create(account.id, name="f")
    renamed = await store.flows.update(
        account.id, flow.id, name="g", outbox=[NewDelivery(endpoint, "flow.updated", {"n": 1})]
    )
    assert renamed.name == "g"
    await store.flows.delete(
        account.id, flow.id, outbox=[NewDelivery(endpoint, "flow.deleted", {"n": 2})]
    )
    assert (await store.flows.get(account.id, flow.id, include_deleted=True)).deleted_at
    assert await _events(store, account) == [
        ("flow.deleted", {"n": 2}),
        ("flow.updated", {"n": 1}),
    ]


async def test_refused_flow_changes_write_no_outbox_entry(store: Store, account: Account) -> None:
    endpoint = await _endpoint(store, account)
    flow = await store.flows.create(account.id, name="f")
    await store.flows.delete(account.id, flow.id)
    entry = [NewDelivery(endpoint, "flow.updated", {})]
    with pytest.raises(NotFound):
        await store.flows.update(account.id, flow.id, name="g", outbox=entry)
    with pytest.raises(NotFound):
        await store.flows.delete(account.id, flow.id, outbox=entry)
    with pytest.raises(NotFound):
        await store.flows.add_version(account.id, flow.id, yaml="a", outbox=entry)
    assert (await store.webhooks.list_deliveries(account.id)).items == []


async def test_flow_entry_for_a_deleted_endpoint_is_dropped(store: Store, account: Account) -> None:
    kept = await _endpoint(store, account)
    gone = await _endpoint(store, account)
    await store.webhooks.delete_endpoint(account.id, gone)
    flow = await store.flows.create(account.id, name="f")
    await store.flows.add_version(
        account.id, flow.id, yaml="a",
        outbox=[NewDelivery(gone, "flow.created", {}), NewDelivery(kept, "flow.created", {})],
    )  # fmt: skip
    page = await store.webhooks.list_deliveries(account.id)
    assert [d.endpoint_id for d in page.items] == [kept]
