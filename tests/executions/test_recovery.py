"""Crash recovery: a run whose executor vanished is claimed and resumed from its checkpoint."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest

from flowrunner.errors import StorageUnavailable
from flowrunner.executions import Recovery, Topic
from flowrunner.storage import Account, Store
from tests.conftest import HANG_GUARD
from tests.executions.conftest import SLOW, STEPS, HarnessFactory, make_harness


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


class _FinishFails:
    """A real store whose executions refuse to record a completed run (a full disk, a value
    the database rejects): the runner crashes after the last node, every time."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    @property
    def executions(self) -> Any:
        inner = self._store.executions

        class Executions:
            def __getattr__(self, name: str) -> Any:
                return getattr(inner, name)

            async def update(self, *args: Any, **kw: Any) -> Any:
                if kw.get("status") == "completed":
                    raise StorageUnavailable("disk full")
                return await inner.update(*args, **kw)

        return Executions()


async def test_a_run_that_crashes_on_every_resume_ends_failed_instead_of_looping(
    store: Store, account: Account
) -> None:
    """Each attempt runs on a new executor (a new process, as after a restart): the count
    lives in the store. After 3 failed resumptions the 4th claim fails the run, naming the
    crash, and its last node stops being re-run."""
    broken = _FinishFails(store)
    built = [make_harness(broken, account, owner="p0")]
    flow_id = await built[0].flow(STEPS)
    execution = await store.executions.create(
        account.id, flow_id=flow_id, flow_version=1, input={"n": 1}
    )
    try:
        assert await built[0].executor.submit(execution)
        await built[0].executor.wait(execution.id)
        for attempt in range(1, 5):
            built.append(make_harness(broken, account, owner=f"p{attempt}"))
            recovery = Recovery(
                store.executions, built[-1].executor, lease_ttl=timedelta(seconds=2)
            )
            # The crashed runner's last events may still be being flushed (a row lock that
            # makes the claim skip the run for now, as a real sweep would): claim until taken.
            async with asyncio.timeout(HANG_GUARD):
                while await recovery.claim_once() != 1:  # noqa: ASYNC110 - a store row
                    await asyncio.sleep(0.05)
            await built[-1].executor.wait(execution.id)
            current = await store.executions.get(account.id, execution.id)
            assert current.resume_attempts == attempt
            assert current.status == ("running" if attempt <= 3 else "failed")
        assert current.error is not None
        assert current.error["code"] == "resume_limit_exceeded"
        assert "disk full" in str(current.error["message"])
        assert current.lease_owner is None
        # Nothing left to claim: the loop is over.
        assert await Recovery(store.executions, built[-1].executor).claim_once() == 0
        events = await store.executions.list_events(account.id, execution.id)
        crashes = [e for e in events if e.data.get("crash")]
        assert len(crashes) == 4  # the first run and three resumptions
        last_node = [
            e
            for e in events
            if e.data.get("node_id") == "third" and e.data.get("state") == "finished"
        ]
        assert len(last_node) == 4
        assert events[-1].type == "error"
    finally:
        for h in built:
            await h.executor.shutdown(grace=0.5)


async def test_a_run_whose_creator_died_before_leasing_it_is_recovered(
    harnesses: HarnessFactory, store: Store, account: Account
) -> None:
    """Created (queued) but never handed to an executor: once older than the grace period
    (the lease TTL), recovery claims and runs it, so an idempotent replay of the request
    finds a run that completes instead of one queued forever."""
    h = harnesses(owner="heir")
    flow_id = await h.flow(STEPS)
    orphan = await store.executions.create(
        account.id, flow_id=flow_id, flow_version=1, input={"name": "x"}, idempotency_key="k"
    )
    recovery = Recovery(store.executions, h.executor, lease_ttl=timedelta(milliseconds=200))
    await asyncio.sleep(0.3)
    assert await recovery.claim_once() == 1
    replay = await h.service.start(account.id, flow_id, {"name": "x"}, idempotency_key="k")
    assert (replay.execution.id, replay.created) == (orphan.id, False)
    done = await h.service.wait(account.id, orphan.id, within=HANG_GUARD)
    assert done.status == "completed"
