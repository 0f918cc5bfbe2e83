"""The in-process executor: bounded concurrency, cancel, graceful shutdown, leases."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from flowrunner.storage import Account, Execution, Store
from tests.conftest import HANG_GUARD
from tests.executions.conftest import (
    GATED,
    SLOW,
    Harness,
    HarnessFactory,
    until_node,
)


async def _start(h: Harness, flow_id: str, nap: float) -> Execution:
    execution = await h.store.executions.create(
        h.account.id, flow_id=flow_id, flow_version=1, input={"nap": nap}
    )
    assert await h.executor.submit(execution)
    return execution


async def _status(h: Harness, execution: Execution) -> str:
    return (await h.store.executions.get(h.account.id, execution.id)).status


async def test_runs_beyond_the_concurrency_bound_wait_in_the_queue(
    harnesses: HarnessFactory, store: Store, account: Account
) -> None:
    h = harnesses(concurrency=2)
    flow_id = await h.flow(GATED)
    runs = [await _start(h, flow_id, 0) for _ in range(4)]
    await h.gate.until_arrived(2)  # two runs hold both slots, working until the gate opens
    statuses = [await _status(h, r) for r in runs]
    assert statuses.count("running") == 2
    assert statuses.count("queued") == 2
    assert h.gate.arrived == 2
    assert (h.executor.active, h.executor.queued) == (4, 2)  # what /metrics samples
    h.gate.open()
    for run in runs:
        await h.executor.wait(run.id)
    assert [await _status(h, r) for r in runs] == ["completed"] * 4
    assert (h.executor.active, h.executor.queued) == (0, 0)
    await h.executor.shutdown(grace=1)


async def test_cancel_stops_the_running_node_and_records_canceled(harness: Harness) -> None:
    flow_id = await harness.flow(SLOW)
    run = await _start(harness, flow_id, 3600)
    await until_node(harness, run.id, "nap", "started")
    # Far shorter than the nap: returning within it proves the node was interrupted.
    async with asyncio.timeout(HANG_GUARD):
        assert await harness.executor.cancel(run)
    done = await harness.store.executions.get(harness.account.id, run.id)
    assert done.status == "canceled"
    assert done.lease_owner is None
    events = await harness.store.executions.list_events(harness.account.id, run.id)
    assert ("nap", "canceled") in [(e.data.get("node_id"), e.data.get("state")) for e in events]
    assert events[-1].data == {"status": "canceled"}


async def test_cancel_of_a_queued_run_never_starts_it(
    harnesses: HarnessFactory, store: Store, account: Account
) -> None:
    h = harnesses(concurrency=1)
    flow_id = await h.flow(GATED)
    first = await _start(h, flow_id, 0)
    queued = await _start(h, flow_id, 0)
    await h.gate.until_arrived(1)  # `first` holds the one slot until the gate opens
    assert await h.executor.cancel(queued)
    assert await _status(h, queued) == "canceled"
    events = await h.store.executions.list_events(h.account.id, queued.id)
    assert [e.data for e in events] == [{"status": "canceled"}]
    h.gate.open()
    await h.executor.wait(first.id)
    assert await _status(h, first) == "completed"
    assert h.gate.arrived == 1
    await h.executor.shutdown(grace=1)


async def test_shutdown_stops_runs_at_a_checkpoint_and_expires_their_lease(
    harnesses: HarnessFactory, store: Store, account: Account
) -> None:
    h = harnesses(concurrency=1)
    flow_id = await h.flow(GATED)
    running = await _start(h, flow_id, 0)
    waiting = await _start(h, flow_id, 0)
    await h.gate.until_arrived(1)  # `running` works in `nap`, `waiting` waits for the slot
    # The nap ends only once shutdown has begun (the callback runs when shutdown first
    # waits); the grace period is a hang guard, the nap needs a fraction of it.
    asyncio.get_running_loop().call_soon(h.gate.open)
    await h.executor.shutdown(grace=HANG_GUARD)
    assert h.gate.arrived == 1
    first = await store.executions.get(account.id, running.id)
    # The nap finished within the grace period, then the run stopped before `last`.
    assert first.status == "running"
    checkpoint = await store.executions.get_checkpoint(account.id, running.id)
    assert checkpoint is not None
    assert checkpoint.next_node == "last"
    second = await store.executions.get(account.id, waiting.id)
    assert second.status == "queued"
    for execution in (first, second):
        assert execution.lease_expires_at is not None
    claimed = await store.executions.admin_claim_expired_leases(
        owner="next", ttl=timedelta(seconds=5)
    )
    assert {e.id for e in claimed} == {running.id, waiting.id}


async def test_a_run_canceled_before_its_task_took_a_step_is_recorded_canceled(
    harness: Harness,
) -> None:
    flow_id = await harness.flow(SLOW)
    run = await _start(harness, flow_id, 3600)  # no await in between: its task never ran yet
    done = await harness.executor.cancel(run)
    assert done.status == "canceled"
    assert done.lease_owner is None
    assert not harness.executor.holds(run.id)
    events = await harness.store.executions.list_events(harness.account.id, run.id)
    assert [e.data for e in events] == [{"status": "canceled"}]


async def test_shutdown_before_a_run_took_a_step_hands_its_lease_back(
    harnesses: HarnessFactory, store: Store, account: Account
) -> None:
    h = harnesses()
    flow_id = await h.flow(SLOW)
    run = await _start(h, flow_id, 3600)  # no await in between: its task never ran yet
    await h.executor.shutdown(grace=HANG_GUARD)
    assert not h.executor.holds(run.id)
    after = await store.executions.get(account.id, run.id)
    assert after.status == "queued"
    # Expired at once, not left to its TTL: the next process takes it straight away.
    claimed = await store.executions.admin_claim_expired_leases(
        owner="next", ttl=timedelta(seconds=5)
    )
    assert [e.id for e in claimed] == [run.id]


async def test_shutdown_past_the_grace_period_interrupts_the_node(
    harnesses: HarnessFactory, store: Store, account: Account
) -> None:
    h = harnesses()
    flow_id = await h.flow(SLOW)
    run = await _start(h, flow_id, 3600)
    await until_node(h, run.id, "nap", "started")
    await h.executor.shutdown(grace=0.2)
    after = await store.executions.get(account.id, run.id)
    assert after.status == "running"
    checkpoint = await store.executions.get_checkpoint(account.id, run.id)
    assert checkpoint is not None
    assert checkpoint.next_node == "nap"


async def test_leases_are_renewed_while_a_run_lasts_longer_than_its_ttl(
    harnesses: HarnessFactory, store: Store, account: Account
) -> None:
    ttl = 1.0
    h = harnesses(ttl=ttl)
    flow_id = await h.flow(GATED)
    run = await _start(h, flow_id, 0)
    first_expiry = (await store.executions.get(account.id, run.id)).lease_expires_at
    assert first_expiry is not None
    await h.gate.until_arrived(1)  # the run works until the gate opens
    # Time itself is the condition here: the lease it took first must be past, by a whole TTL.
    while datetime.now(UTC) < first_expiry + timedelta(seconds=ttl):  # noqa: ASYNC110
        await asyncio.sleep(0.1)
    stolen = await store.executions.admin_claim_expired_leases(
        owner="thief", ttl=timedelta(seconds=5)
    )
    assert stolen == []
    h.gate.open()
    await h.executor.wait(run.id)
    assert await _status(h, run) == "completed"
    await h.executor.shutdown(grace=1)
