"""Conformance: durable waits (``waiting`` runs, their wake time, the waker's claim), on every
backend."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from flowrunner.errors import Conflict
from flowrunner.executions.states import transition
from flowrunner.storage import Account, Execution, NewEvent, Store
from tests.storage.backends import FakeClock

TTL = timedelta(seconds=30)
WAIT = {"id": "w1", "node_id": "approve", "steps": 2, "kind": "signal", "signal": "go"}


async def _waiting(
    store: Store, account: Account, clock: FakeClock, *, after: timedelta | None
) -> Execution:
    """A run that started, then parked, waking ``after`` from now (None: signal only)."""
    runs = store.executions
    run = await runs.create(account.id, flow_id="f", flow_version=1)
    run = await runs.acquire_lease(account.id, run.id, owner="w1", ttl=TTL)
    run = await transition(runs, run, "running")
    wake_at = clock() + after if after is not None else None
    return await transition(runs, run, "waiting", wake_at=wake_at, wait=WAIT)


async def test_a_waiting_run_keeps_its_wake_time_and_wait_and_holds_no_lease(
    store: Store, account: Account, clock: FakeClock
) -> None:
    before = clock()
    parked = await _waiting(store, account, clock, after=timedelta(minutes=5))
    read = await store.executions.get(account.id, parked.id)
    assert read.status == "waiting"
    assert read.wake_at is not None
    assert read.wake_at == parked.wake_at
    assert before + timedelta(minutes=5) < read.wake_at < clock() + timedelta(minutes=5)
    assert read.wait == WAIT
    assert read.lease_owner is None
    assert read.lease_expires_at is None
    page = await store.executions.list(account.id, status=["waiting"])
    assert [e.id for e in page.items] == [parked.id]


async def test_crash_recovery_never_claims_a_waiting_run(
    store: Store, account: Account, clock: FakeClock
) -> None:
    await _waiting(store, account, clock, after=timedelta(minutes=5))
    await _waiting(store, account, clock, after=None)
    clock.advance(timedelta(hours=1))  # long past any lease ttl (and the first one's wake)
    claimed = await store.executions.admin_claim_expired_leases(owner="r", ttl=TTL)
    assert claimed == []


async def test_the_waker_claims_only_due_runs_earliest_first_and_leases_them(
    store: Store, account: Account, other: Account, clock: FakeClock
) -> None:
    late = await _waiting(store, account, clock, after=timedelta(minutes=10))
    early = await _waiting(store, other, clock, after=timedelta(minutes=1))
    forever = await _waiting(store, account, clock, after=None)
    runs = store.executions
    assert await runs.admin_claim_due_waits(owner="k", ttl=TTL) == []
    clock.advance(timedelta(minutes=11))
    first = await runs.admin_claim_due_waits(owner="k", ttl=TTL, limit=1)
    assert [e.id for e in first] == [early.id]  # the earliest due first
    woken = [*first, *await runs.admin_claim_due_waits(owner="k", ttl=TTL)]
    assert [e.id for e in woken] == [early.id, late.id]
    for e in woken:
        assert e.status == "running"
        assert e.wake_at is None
        assert e.lease_owner == "k"
        assert e.wait == WAIT  # the resumed node reads it
        assert e.resume_attempts == 0  # a wake is not a crash
    assert (await runs.get(account.id, forever.id)).status == "waiting"
    assert await runs.admin_claim_due_waits(owner="k2", ttl=TTL) == []


async def test_the_waker_claims_at_most_limit(
    store: Store, account: Account, clock: FakeClock
) -> None:
    for _ in range(3):
        await _waiting(store, account, clock, after=timedelta(seconds=1))
    clock.advance(timedelta(seconds=2))
    first = await store.executions.admin_claim_due_waits(owner="k", ttl=TTL, limit=2)
    rest = await store.executions.admin_claim_due_waits(owner="k", ttl=TTL, limit=2)
    assert (len(first), len(rest)) == (2, 1)


async def test_racing_wakers_each_run_is_claimed_once(
    store: Store, account: Account, clock: FakeClock
) -> None:
    ids = {(await _waiting(store, account, clock, after=timedelta(seconds=1))).id for _ in range(5)}
    clock.advance(timedelta(seconds=2))
    batches = await asyncio.gather(
        *(store.executions.admin_claim_due_waits(owner=f"k{i}", ttl=TTL) for i in range(4))
    )
    claimed = [e.id for batch in batches for e in batch]
    assert sorted(claimed) == sorted(ids)


async def test_leaving_waiting_clears_the_wake_time(
    store: Store, account: Account, clock: FakeClock
) -> None:
    parked = await _waiting(store, account, clock, after=timedelta(minutes=5))
    canceled = await transition(store.executions, parked, "canceled")
    assert canceled.wake_at is None
    assert canceled.status == "canceled"
    clock.advance(timedelta(hours=1))
    assert await store.executions.admin_claim_due_waits(owner="k", ttl=TTL) == []


async def test_a_signal_is_a_compare_and_set_on_status_and_last_event(
    store: Store, account: Account, clock: FakeClock
) -> None:
    runs = store.executions
    parked = await _waiting(store, account, clock, after=timedelta(minutes=5))
    seen = parked.last_event_seq
    signaled = {**WAIT, "payload": {"ok": True}}
    await runs.append_events(account.id, parked.id, [NewEvent("log", {"message": "x"})])
    with pytest.raises(Conflict):  # the run changed since it was read
        await runs.update(
            account.id, parked.id, expected_status=["waiting"], expected_seq=seen,
            status="running", wait=signaled,
        )  # fmt: skip
    now = await runs.get(account.id, parked.id)
    resumed = await runs.update(
        account.id, parked.id, expected_status=["waiting"], expected_seq=now.last_event_seq,
        status="running", wait=signaled,
    )  # fmt: skip
    assert resumed.status == "running"
    assert resumed.wait == signaled
    assert resumed.wake_at is None
    with pytest.raises(Conflict):  # a second signal finds it running
        await runs.update(
            account.id, parked.id, expected_status=["waiting"],
            expected_seq=resumed.last_event_seq, status="running", wait=signaled,
        )  # fmt: skip
    clock.advance(timedelta(hours=1))
    assert await runs.admin_claim_due_waits(owner="k", ttl=TTL) == []
