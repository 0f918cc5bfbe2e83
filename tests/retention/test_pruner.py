"""Retention on every backend, with a clock the tests move: exactly what the policy says goes,
never an active run, never another account's."""

from __future__ import annotations

from datetime import timedelta

from flowrunner.errors import NotFound
from flowrunner.retention import PolicyStore, Pruner, RetentionPolicy, Rule
from flowrunner.storage import Account, Store
from flowrunner.storage.records import ExecutionStatus
from tests.storage.backends import FakeClock


async def finished(
    store: Store, account: Account, flow_id: str, status: ExecutionStatus, clock: FakeClock
) -> str:
    run = await store.executions.create(account.id, flow_id=flow_id, flow_version=1)
    await store.executions.update(account.id, run.id, status=status, finished_at=clock())
    return run.id


async def exists(store: Store, account: Account, run_id: str) -> bool:
    try:
        await store.executions.get(account.id, run_id)
    except NotFound:
        return False
    return True


async def test_runs_older_than_the_days_of_their_kind_go_and_nothing_else(
    store: Store, account: Account, other: Account, clock: FakeClock
) -> None:
    old_done = await finished(store, account, "f1", "completed", clock)
    old_failed = await finished(store, account, "f1", "failed", clock)
    old_active = (await store.executions.create(account.id, flow_id="f1", flow_version=1)).id
    await store.executions.update(account.id, old_active, status="running")
    theirs = await finished(store, other, "f9", "completed", clock)
    clock.advance(timedelta(days=20))
    recent_done = await finished(store, account, "f1", "completed", clock)
    clock.advance(timedelta(days=20))  # old ones are 40 days old, recent ones 20

    default = RetentionPolicy(completed=Rule(days=30))
    policies = PolicyStore(store, default)
    await policies.set(other.id, RetentionPolicy())  # the other account keeps everything
    pruner = Pruner(store, policies, batch=2, clock=clock)

    planned = await pruner.prune(dry_run=True)
    assert [(p.account_id, p.statuses, p.count) for p in planned] == [
        (account.id, ("completed",), 1)
    ]
    assert await exists(store, account, old_done)  # a dry run deletes nothing

    done = await pruner.prune()
    assert [(p.account_id, p.count) for p in done] == [(account.id, 1)]
    assert not await exists(store, account, old_done)
    for kept in (old_failed, old_active, recent_done):
        assert await exists(store, account, kept)
    assert await exists(store, other, theirs)
    assert await pruner.prune() == []  # nothing left to do


async def test_the_last_n_of_each_flow_are_kept_per_kind(
    store: Store, account: Account, clock: FakeClock
) -> None:
    a = await store.flows.create(account.id, name="a")
    b = await store.flows.create(account.id, name="b")
    a_done = [await finished(store, account, a.id, "completed", clock) for _ in range(5)]
    b_done = [await finished(store, account, b.id, "completed", clock) for _ in range(2)]
    a_failed = [await finished(store, account, a.id, "failed", clock) for _ in range(2)]
    a_canceled = await finished(store, account, a.id, "canceled", clock)
    policy = RetentionPolicy(completed=Rule(keep_last=3), failed=Rule(keep_last=2))
    pruner = Pruner(store, PolicyStore(store, RetentionPolicy()), batch=2, clock=clock)
    await PolicyStore(store, RetentionPolicy()).set(account.id, policy)

    assert sum(p.count for p in await pruner.prune(dry_run=True)) == 3
    assert sum(p.count for p in await pruner.prune()) == 3

    survivors = [
        r for r in a_done + b_done + a_failed + [a_canceled] if await exists(store, account, r)
    ]
    # The newest 3 completed of a, both of b; failed and canceled count together: the newest 2.
    assert survivors == a_done[2:] + b_done + [a_failed[1], a_canceled]


async def test_both_limits_apply_and_a_dry_run_counts_each_run_once(
    store: Store, account: Account, clock: FakeClock
) -> None:
    flow = await store.flows.create(account.id, name="a")
    old = [await finished(store, account, flow.id, "completed", clock) for _ in range(3)]
    clock.advance(timedelta(days=10))
    new = [await finished(store, account, flow.id, "completed", clock) for _ in range(3)]
    policy = RetentionPolicy(completed=Rule(days=5, keep_last=2))
    pruner = Pruner(store, PolicyStore(store, policy), clock=clock)

    assert sum(p.count for p in await pruner.prune(dry_run=True)) == 4
    assert sum(p.count for p in await pruner.prune()) == 4
    assert [r for r in old + new if await exists(store, account, r)] == new[1:]
