"""Retention on every backend, with a clock the tests move: exactly what the policy says goes,
never an active run, never another account's."""

from __future__ import annotations

from datetime import timedelta

import pytest

from flowrunner.errors import NotFound
from flowrunner.retention import PolicyStore, Pruner, RetentionPolicy, Rule
from flowrunner.storage import Account, NewDelivery, Store
from flowrunner.storage.records import ExecutionStatus, WebhookDelivery
from flowrunner.webhooks import attempts
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


async def _run_with_delivery(
    store: Store, account: Account, endpoint: str, clock: FakeClock
) -> str:
    """A completed run whose final status wrote one webhook delivery, as the runner does."""
    run = await store.executions.create(account.id, flow_id="f1", flow_version=1)
    entry = NewDelivery(endpoint, "execution.completed", {"run": run.id})
    await store.executions.update(
        account.id, run.id, status="completed", finished_at=clock(), outbox=[entry]
    )
    return run.id


async def _attempt(
    store: Store, account: Account, delivery: WebhookDelivery, clock: FakeClock, *, ok: bool
) -> None:
    """One attempt of a claimed delivery, recorded as the dispatcher records it: the outcome
    on the delivery, the detail in the attempts log; a failure is retried in an hour."""
    retry = None if ok else clock() + timedelta(hours=1)
    await store.webhooks.record_attempt(
        account.id, delivery.id, worker="w", delivered=ok, retry_at=retry
    )
    detail = attempts.Attempt(
        delivery.id, delivery.attempts + 1, clock(), 200, 1.0, "", None, retry
    )
    await attempts.save(store.kv, account.id, detail)


async def test_a_pruned_runs_deliveries_and_attempts_go_with_it_once_sent(
    store: Store, account: Account, clock: FakeClock
) -> None:
    endpoint = (
        await store.webhooks.create_endpoint(account.id, url="https://x.test", secret="s")
    ).id
    old_sent = await _run_with_delivery(store, account, endpoint, clock)
    old_retrying = await _run_with_delivery(store, account, endpoint, clock)
    clock.advance(timedelta(days=20))
    recent = await _run_with_delivery(store, account, endpoint, clock)
    clock.advance(timedelta(days=20))  # old runs are 40 days old, the recent one 20
    deliveries = {d.execution_id: d for d in await store.webhooks.admin_claim_due(worker="w")}
    for run, delivery in deliveries.items():
        await _attempt(store, account, delivery, clock, ok=run != old_retrying)
    pruner = Pruner(
        store, PolicyStore(store, RetentionPolicy(completed=Rule(days=30))), clock=clock
    )

    # The retried delivery must still be sent: its run waits for it.
    assert sum(p.count for p in await pruner.prune()) == 1
    assert not await exists(store, account, old_sent)
    with pytest.raises(NotFound):
        await store.webhooks.get_delivery(account.id, deliveries[old_sent].id)
    assert await attempts.history(store.kv, account.id, deliveries[old_sent].id) == []
    for run in (old_retrying, recent):  # another run's delivery and attempts stay
        assert await exists(store, account, run)
        await store.webhooks.get_delivery(account.id, deliveries[run].id)
        assert len(await attempts.history(store.kv, account.id, deliveries[run].id)) == 1

    clock.advance(timedelta(hours=1))
    (retried,) = await store.webhooks.admin_claim_due(worker="w")
    await _attempt(store, account, retried, clock, ok=True)
    assert sum(p.count for p in await pruner.prune()) == 1
    assert not await exists(store, account, old_retrying)
    with pytest.raises(NotFound):
        await store.webhooks.get_delivery(account.id, retried.id)
    assert await attempts.history(store.kv, account.id, retried.id) == []
    assert len(await attempts.history(store.kv, account.id, deliveries[recent].id)) == 1
