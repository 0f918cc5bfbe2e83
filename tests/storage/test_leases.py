"""Conformance: execution leases (who runs a run) and crash recovery, on every backend."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from flowrunner.errors import Conflict
from flowrunner.executions.states import transition
from flowrunner.storage import Account, NewCheckpoint, NewEvent, Store
from flowrunner.storage.records import ExecutionStatus
from tests.storage.backends import FakeClock

TTL = timedelta(seconds=30)


async def _run(store: Store, account: Account) -> str:
    return (await store.executions.create(account.id, flow_id="f", flow_version=1)).id


async def test_free_lease_is_acquired_and_held_against_others(
    store: Store, account: Account
) -> None:
    run_id = await _run(store, account)
    leased = await store.executions.acquire_lease(account.id, run_id, owner="w1", ttl=TTL)
    assert leased.lease_owner == "w1"
    assert leased.lease_expires_at is not None
    with pytest.raises(Conflict):
        await store.executions.acquire_lease(account.id, run_id, owner="w2", ttl=TTL)
    # Re-acquiring one's own lease extends it.
    again = await store.executions.acquire_lease(account.id, run_id, owner="w1", ttl=TTL)
    assert again.lease_expires_at is not None
    assert again.lease_expires_at > leased.lease_expires_at


async def test_a_run_created_leased_is_held_like_one_leased_after(
    store: Store, account: Account, clock: FakeClock
) -> None:
    run = await store.executions.create(
        account.id, flow_id="f", flow_version=1, lease_owner="w1", lease_ttl=TTL
    )
    assert run.lease_owner == "w1"
    assert run.lease_expires_at == run.created_at + TTL
    assert await store.executions.get(account.id, run.id) == run
    with pytest.raises(Conflict):
        await store.executions.acquire_lease(account.id, run.id, owner="w2", ttl=TTL)
    renewed = await store.executions.renew_lease(account.id, run.id, owner="w1", ttl=TTL)
    assert renewed.lease_expires_at is not None
    assert renewed.lease_expires_at > run.created_at + TTL
    # Recovery leaves it alone while the lease holds, and takes it once it has expired.
    assert await store.executions.admin_claim_expired_leases(owner="r", ttl=TTL) == []
    clock.advance(3 * TTL)
    claimed = await store.executions.admin_claim_expired_leases(owner="r", ttl=TTL)
    assert [c.id for c in claimed] == [run.id]


async def test_expired_lease_can_be_stolen_and_old_owner_cannot_renew(
    store: Store, account: Account, clock: FakeClock
) -> None:
    run_id = await _run(store, account)
    await store.executions.acquire_lease(account.id, run_id, owner="w1", ttl=TTL)
    clock.advance(TTL + timedelta(seconds=1))
    stolen = await store.executions.acquire_lease(account.id, run_id, owner="w2", ttl=TTL)
    assert stolen.lease_owner == "w2"
    with pytest.raises(Conflict):
        await store.executions.renew_lease(account.id, run_id, owner="w1", ttl=TTL)
    # The old owner's release is a no-op: the new owner keeps the lease.
    await store.executions.release_lease(account.id, run_id, owner="w1")
    assert (await store.executions.get(account.id, run_id)).lease_owner == "w2"


async def test_renew_extends_and_release_frees(
    store: Store, account: Account, clock: FakeClock
) -> None:
    run_id = await _run(store, account)
    first = await store.executions.acquire_lease(account.id, run_id, owner="w1", ttl=TTL)
    clock.advance(timedelta(seconds=20))
    renewed = await store.executions.renew_lease(account.id, run_id, owner="w1", ttl=TTL)
    assert renewed.lease_expires_at
    assert first.lease_expires_at
    assert renewed.lease_expires_at > first.lease_expires_at
    await store.executions.release_lease(account.id, run_id, owner="w1")
    freed = await store.executions.get(account.id, run_id)
    assert freed.lease_owner is None
    assert freed.lease_expires_at is None
    with pytest.raises(Conflict):
        await store.executions.renew_lease(account.id, run_id, owner="w1", ttl=TTL)
    await store.executions.acquire_lease(account.id, run_id, owner="w2", ttl=TTL)


async def test_racing_acquirers_get_exactly_one_lease(store: Store, account: Account) -> None:
    run_id = await _run(store, account)
    results = await asyncio.gather(
        *(
            store.executions.acquire_lease(account.id, run_id, owner=f"w{i}", ttl=TTL)
            for i in range(6)
        ),
        return_exceptions=True,
    )
    winners = [r for r in results if not isinstance(r, BaseException)]
    assert len(winners) == 1
    assert all(isinstance(r, Conflict) for r in results if isinstance(r, BaseException))


async def test_recovery_claims_only_expired_active_runs_across_accounts(
    store: Store, account: Account, other: Account, clock: FakeClock
) -> None:
    crashed = await _run(store, account)
    crashed_elsewhere = await _run(store, other)
    alive = await _run(store, account)
    finished = await _run(store, account)
    for acc, run_id in [(account, crashed), (other, crashed_elsewhere), (account, finished)]:
        await store.executions.acquire_lease(acc.id, run_id, owner="dead", ttl=TTL)
    await store.executions.update(account.id, finished, status="completed")
    clock.advance(TTL + timedelta(seconds=1))
    await store.executions.acquire_lease(account.id, alive, owner="live", ttl=TTL)
    never_leased = await _run(store, account)  # just created: its creator is leasing it

    claimed = await store.executions.admin_claim_expired_leases(owner="rescuer", ttl=TTL)
    assert {e.id for e in claimed} == {crashed, crashed_elsewhere}
    assert all(e.lease_owner == "rescuer" for e in claimed)
    assert never_leased not in {e.id for e in claimed}
    assert await store.executions.admin_claim_expired_leases(owner="late", ttl=TTL) == []


async def test_two_recoverers_never_claim_the_same_run(
    store: Store, account: Account, clock: FakeClock
) -> None:
    runs = [await _run(store, account) for _ in range(10)]
    for run_id in runs:
        await store.executions.acquire_lease(account.id, run_id, owner="dead", ttl=TTL)
    clock.advance(TTL * 2)
    a, b = await asyncio.gather(
        store.executions.admin_claim_expired_leases(owner="a", ttl=TTL, limit=6),
        store.executions.admin_claim_expired_leases(owner="b", ttl=TTL, limit=6),
    )
    ids_a, ids_b = {e.id for e in a}, {e.id for e in b}
    assert not ids_a & ids_b
    assert ids_a | ids_b == set(runs)


async def test_a_recovery_claim_takes_at_most_its_limit_and_the_next_one_the_rest(
    store: Store, account: Account, clock: FakeClock
) -> None:
    for run_id in [await _run(store, account) for _ in range(5)]:
        await store.executions.acquire_lease(account.id, run_id, owner="dead", ttl=TTL)
    clock.advance(TTL * 2)
    first = await store.executions.admin_claim_expired_leases(owner="a", ttl=TTL, limit=3)
    rest = await store.executions.admin_claim_expired_leases(owner="b", ttl=TTL, limit=3)
    assert (len(first), len(rest)) == (3, 2)


@pytest.mark.parametrize("final", ["completed", "failed", "canceled"])
async def test_a_final_transition_lets_the_lease_go_in_the_same_write(
    store: Store, account: Account, final: ExecutionStatus
) -> None:
    """The run lifecycle (``executions.states``) on every backend: what ending a run does
    besides its status, which the executor relies on (it hands back no lease of a run that
    ended)."""
    run = await store.executions.create(account.id, flow_id="f", flow_version=1)
    await store.executions.acquire_lease(account.id, run.id, owner="me", ttl=TTL)
    running = await transition(store.executions, run, "running")
    assert running.lease_owner == "me"  # a move that does not end the run keeps it
    step = NewCheckpoint(shared={}, next_node="b", results={"a": 1}, resume={"last_node": "a"})
    await store.executions.record_step(
        account.id, run.id, [NewEvent("node")], checkpoint=step, current_node="b"
    )
    done = await transition(store.executions, running, final)
    assert (done.lease_owner, done.lease_expires_at, done.current_node) == (None, None, None)
    assert await store.executions.get(account.id, run.id) == done
    with pytest.raises(Conflict):  # nothing left to renew
        await store.executions.renew_lease(account.id, run.id, owner="me", ttl=TTL)
    # A failed run keeps its checkpoint for a retry with resume; the others have none left.
    kept = await store.executions.get_checkpoint(account.id, run.id)
    assert (kept is not None) == (final == "failed")
    # A finished run is never handed to crash recovery, leased or not.
    assert await store.executions.admin_claim_expired_leases(owner="other", ttl=TTL) == []


async def test_the_store_lets_a_lease_go_only_when_asked(store: Store, account: Account) -> None:
    run_id = await _run(store, account)
    await store.executions.acquire_lease(account.id, run_id, owner="me", ttl=TTL)
    await store.executions.update(account.id, run_id, status="running", current_node="a")
    ended = await store.executions.update(account.id, run_id, status="failed")
    assert (ended.lease_owner, ended.current_node) == ("me", "a")
    released = await store.executions.update(account.id, run_id, release_lease=True)
    assert (released.lease_owner, released.lease_expires_at) == (None, None)
    assert released.current_node is None
    assert released.status == "failed"


async def test_recovery_claims_runs_never_leased_once_past_the_grace_period(
    store: Store, account: Account, clock: FakeClock
) -> None:
    """A process that dies between creating a run and leasing it leaves it queued with no
    lease: recovery takes it once it is older than ``unleased_after``."""
    orphan = await _run(store, account)
    grace = timedelta(seconds=60)
    clock.advance(timedelta(seconds=30))
    young = await _run(store, account)
    assert (
        await store.executions.admin_claim_expired_leases(owner="r", ttl=TTL, unleased_after=grace)
        == []
    )
    clock.advance(timedelta(seconds=31))
    claimed = await store.executions.admin_claim_expired_leases(
        owner="r", ttl=TTL, unleased_after=grace
    )
    assert [(e.id, e.status, e.lease_owner) for e in claimed] == [(orphan, "queued", "r")]
    assert young not in {e.id for e in claimed}
    # Claimed means leased: the next sweep leaves it to its new owner.
    assert (
        await store.executions.admin_claim_expired_leases(owner="r2", ttl=TTL, unleased_after=grace)
        == []
    )


async def test_each_claim_counts_a_resume_attempt_until_a_checkpoint_is_saved(
    store: Store, account: Account, clock: FakeClock
) -> None:
    run_id = await _run(store, account)
    assert (await store.executions.get(account.id, run_id)).resume_attempts == 0
    for attempt in (1, 2, 3):
        await store.executions.acquire_lease(account.id, run_id, owner="w", ttl=TTL)
        clock.advance(TTL + timedelta(seconds=1))
        (claimed,) = await store.executions.admin_claim_expired_leases(owner="r", ttl=TTL)
        assert claimed.resume_attempts == attempt
        assert (await store.executions.get(account.id, run_id)).resume_attempts == attempt
        await store.executions.release_lease(account.id, run_id, owner="r")
    # An event without a checkpoint is no progress; a saved checkpoint is.
    await store.executions.record_step(account.id, run_id, [NewEvent("log")])
    assert (await store.executions.get(account.id, run_id)).resume_attempts == 3
    step = NewCheckpoint(shared={}, next_node="b", results={})
    await store.executions.record_step(account.id, run_id, [NewEvent("node")], checkpoint=step)
    assert (await store.executions.get(account.id, run_id)).resume_attempts == 0
