"""Conformance: webhook endpoints and the delivery outbox, on every backend."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from flowrunner.errors import Conflict, NotFound
from flowrunner.storage import Account, Store, WebhookEndpoint
from tests.storage.backends import FakeClock

LEASE = timedelta(seconds=60)


async def _endpoint(store: Store, account: Account, **kw: object) -> WebhookEndpoint:
    return await store.webhooks.create_endpoint(
        account.id,
        url="https://example.test/h",
        secret="whsec",
        **kw,  # type: ignore[arg-type]
    )


async def test_endpoint_crud(store: Store, account: Account, other: Account) -> None:
    ep = await _endpoint(store, account, events=["execution.completed"])
    assert await store.webhooks.get_endpoint(account.id, ep.id) == ep
    updated = await store.webhooks.update_endpoint(account.id, ep.id, enabled=False, events=[])
    assert not updated.enabled
    assert updated.events == ()
    assert updated.url == ep.url
    with pytest.raises(NotFound):
        await store.webhooks.get_endpoint(other.id, ep.id)
    with pytest.raises(NotFound):
        await store.webhooks.update_endpoint(other.id, ep.id, enabled=True)
    with pytest.raises(NotFound):
        await store.webhooks.delete_endpoint(other.id, ep.id)
    await store.webhooks.delete_endpoint(account.id, ep.id)
    with pytest.raises(NotFound):
        await store.webhooks.get_endpoint(account.id, ep.id)


async def test_list_endpoints_filters_by_enabled_and_event(store: Store, account: Account) -> None:
    done = await _endpoint(store, account, events=["execution.completed"])
    failed = await _endpoint(store, account, events=["execution.failed"])
    every = await _endpoint(store, account)
    off = await _endpoint(store, account, enabled=False)

    async def ids(**kw: object) -> list[str]:
        page = await store.webhooks.list_endpoints(account.id, **kw)  # type: ignore[arg-type]
        return [e.id for e in page.items]

    assert await ids() == [off.id, every.id, failed.id, done.id]
    assert await ids(enabled=True, event="execution.failed") == [every.id, failed.id]
    page = await store.webhooks.list_endpoints(account.id, event="execution.completed", limit=2)
    assert [e.id for e in page.items] == [off.id, every.id]
    rest = await store.webhooks.list_endpoints(
        account.id, event="execution.completed", cursor=page.next_cursor
    )
    assert [e.id for e in rest.items] == [done.id]
    assert rest.next_cursor is None


async def test_delivery_lifecycle_retry_then_delivered(
    store: Store, account: Account, clock: FakeClock
) -> None:
    ep = await _endpoint(store, account)
    d = await store.webhooks.enqueue(account.id, ep.id, event_type="e", payload={"n": 1})
    assert d.status == "pending"
    assert d.attempts == 0
    (claimed,) = await store.webhooks.admin_claim_due(worker="w1", lease=LEASE)
    assert claimed.id == d.id
    assert claimed.claimed_by == "w1"
    # Claimed: nobody else gets it while the claim lasts.
    assert await store.webhooks.admin_claim_due(worker="w2", lease=LEASE) == []
    retry_at = clock.now + timedelta(seconds=10)
    failed = await store.webhooks.record_attempt(
        account.id, d.id, worker="w1", delivered=False, status_code=503, error="busy",
        retry_at=retry_at,
    )  # fmt: skip
    assert failed.status == "pending"
    assert failed.attempts == 1
    assert failed.next_attempt_at == retry_at
    assert failed.claimed_by is None
    assert await store.webhooks.admin_claim_due(worker="w1", lease=LEASE) == []  # not due yet
    clock.advance(timedelta(seconds=11))
    (again,) = await store.webhooks.admin_claim_due(worker="w2", lease=LEASE)
    done = await store.webhooks.record_attempt(
        account.id, again.id, worker="w2", delivered=True, status_code=200
    )
    assert done.status == "delivered"
    assert done.attempts == 2
    assert done.delivered_at is not None
    assert await store.webhooks.get_delivery(account.id, d.id) == done
    with pytest.raises(Conflict):
        await store.webhooks.record_attempt(account.id, d.id, worker="w2", delivered=True)


async def test_giving_up_marks_delivery_dead(store: Store, account: Account) -> None:
    ep = await _endpoint(store, account)
    d = await store.webhooks.enqueue(account.id, ep.id, event_type="e", payload={})
    await store.webhooks.admin_claim_due(worker="w", lease=LEASE)
    dead = await store.webhooks.record_attempt(
        account.id, d.id, worker="w", delivered=False, error="gone"
    )
    assert dead.status == "dead"
    page = await store.webhooks.list_deliveries(account.id, status="dead")
    assert [x.id for x in page.items] == [d.id]
    assert (await store.webhooks.list_deliveries(account.id, status="pending")).items == []


async def test_expired_claim_is_reclaimed_and_stale_worker_cannot_record(
    store: Store, account: Account, clock: FakeClock
) -> None:
    ep = await _endpoint(store, account)
    d = await store.webhooks.enqueue(account.id, ep.id, event_type="e", payload={})
    await store.webhooks.admin_claim_due(worker="slow", lease=LEASE)
    clock.advance(LEASE + timedelta(seconds=1))
    (taken,) = await store.webhooks.admin_claim_due(worker="fast", lease=LEASE)
    assert taken.id == d.id
    assert taken.claimed_by == "fast"
    with pytest.raises(Conflict):
        await store.webhooks.record_attempt(account.id, d.id, worker="slow", delivered=True)


async def test_two_workers_never_claim_the_same_delivery(store: Store, account: Account) -> None:
    ep = await _endpoint(store, account)
    made = {
        (await store.webhooks.enqueue(account.id, ep.id, event_type="e", payload={"i": i})).id
        for i in range(30)
    }

    async def worker(name: str) -> list[str]:
        got: list[str] = []
        while batch := await store.webhooks.admin_claim_due(worker=name, limit=4, lease=LEASE):
            got += [d.id for d in batch]
            for d in batch:
                await store.webhooks.record_attempt(
                    account.id, d.id, worker=name, delivered=True, status_code=200
                )
        return got

    a, b = await asyncio.gather(worker("a"), worker("b"))
    assert not set(a) & set(b)
    assert sorted(a + b) == sorted(made)


async def test_a_claim_takes_at_most_its_limit_and_the_next_one_the_rest(
    store: Store, account: Account
) -> None:
    ep = await _endpoint(store, account)
    for i in range(5):
        await store.webhooks.enqueue(account.id, ep.id, event_type="e", payload={"i": i})
    first = await store.webhooks.admin_claim_due(worker="w", limit=3, lease=LEASE)
    rest = await store.webhooks.admin_claim_due(worker="w", limit=3, lease=LEASE)
    assert (len(first), len(rest)) == (3, 2)
    assert not {d.id for d in first} & {d.id for d in rest}


async def test_not_before_delays_delivery_and_deleting_endpoint_drops_outbox(
    store: Store, account: Account, other: Account, clock: FakeClock
) -> None:
    ep = await _endpoint(store, account)
    later = await store.webhooks.enqueue(
        account.id, ep.id, event_type="e", payload={}, not_before=clock.now + timedelta(hours=1)
    )
    assert await store.webhooks.admin_claim_due(worker="w", lease=LEASE) == []
    with pytest.raises(NotFound):
        await store.webhooks.enqueue(other.id, ep.id, event_type="e", payload={})
    with pytest.raises(NotFound):
        await store.webhooks.get_delivery(other.id, later.id)
    await store.webhooks.delete_endpoint(account.id, ep.id)
    with pytest.raises(NotFound):
        await store.webhooks.get_delivery(account.id, later.id)
