"""Crash recovery: a run whose executor vanished is claimed and resumed from its checkpoint."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from flowrunner.executions import Recovery, Topic
from flowrunner.storage import Account, Store
from tests.conftest import HANG_GUARD
from tests.executions.conftest import SLOW, HarnessFactory


async def test_a_crashed_run_resumes_from_its_checkpoint_on_another_executor(
    harnesses: HarnessFactory, store: Store, account: Account
) -> None:
    crashed = harnesses()
    flow_id = await crashed.flow(SLOW)
    execution = await store.executions.create(
        account.id, flow_id=flow_id, flow_version=1, input={"nap": 30}
    )
    await store.executions.acquire_lease(
        account.id, execution.id, owner="crashed", ttl=timedelta(milliseconds=300)
    )
    # The dead process's runner got past `first` and was sleeping in `nap` when it died:
    # nothing is handed back and nobody renews the lease.
    live = await crashed.bus.subscribe(Topic(account.id, execution_id=execution.id))
    dying = asyncio.get_running_loop().create_task(crashed.runner.run(execution))
    async with asyncio.timeout(HANG_GUARD):
        async for event in live:
            if event.data.get("node_id") == "nap" and event.data.get("state") == "started":
                break
    await live.close()
    dying.cancel()
    with pytest.raises(asyncio.CancelledError):
        await dying
    await asyncio.sleep(0.35)

    survivor = harnesses(owner="survivor")
    # The resumed nap is short: the input still says 30s, so point the resumed run at a
    # shorter one by editing what the checkpointed run would read next.
    checkpoint = await store.executions.get_checkpoint(account.id, execution.id)
    assert checkpoint is not None
    assert checkpoint.next_node == "nap"
    results = dict(checkpoint.results)
    results["first"] = {"step": 1}
    await store.executions.save_checkpoint(
        account.id, execution.id, shared=checkpoint.shared, next_node="last", results=results
    )
    recovery = Recovery(store.executions, survivor.executor, lease_ttl=timedelta(seconds=2))
    assert await recovery.claim_once() == 1
    await survivor.executor.wait(execution.id)
    done = await store.executions.get(account.id, execution.id)
    assert done.status == "completed"
    assert done.lease_owner is None
    events = await store.executions.list_events(account.id, execution.id)
    resumed = [e for e in events if e.data.get("resumed")]
    assert len(resumed) == 1
    assert resumed[0].data["from_node"] == "last"
    started = [e.data["node_id"] for e in events if e.data.get("state") == "started"]
    assert started == ["first", "nap", "last"]
    await survivor.executor.shutdown(grace=1)


async def test_live_leases_are_not_claimed(
    harnesses: HarnessFactory, store: Store, account: Account
) -> None:
    owner = harnesses(ttl=5, owner="alive")
    flow_id = await owner.flow(SLOW)
    execution = await store.executions.create(
        account.id, flow_id=flow_id, flow_version=1, input={"nap": 0.5}
    )
    await owner.executor.submit(execution)
    other = harnesses(owner="other")
    recovery = Recovery(store.executions, other.executor)
    assert await recovery.claim_once() == 0
    await owner.executor.wait(execution.id)
    await owner.executor.shutdown(grace=1)


async def test_background_sweeps_pick_up_runs_that_expire_later(
    harnesses: HarnessFactory, store: Store, account: Account
) -> None:
    h = harnesses(owner="sweeper")
    flow_id = await h.flow(SLOW)
    execution = await store.executions.create(
        account.id, flow_id=flow_id, flow_version=1, input={"nap": 0}
    )
    await store.executions.acquire_lease(
        account.id, execution.id, owner="gone", ttl=timedelta(milliseconds=300)
    )
    recovery = Recovery(store.executions, h.executor, interval=0.1)
    recovery.start()
    try:
        done = await h.service.wait(account.id, execution.id, within=HANG_GUARD)
        assert done.status == "completed"
    finally:
        await recovery.stop()
        await h.executor.shutdown(grace=1)
