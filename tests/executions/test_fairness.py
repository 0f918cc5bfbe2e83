"""The executor between accounts: fair admission, the per-account cap, and delays that hold
no slot."""

from __future__ import annotations

import asyncio

from flowrunner.storage import Account, Execution, Store
from tests.executions.conftest import (
    BUSY,
    SLOW,
    STEPS,
    Harness,
    HarnessFactory,
    eventually,
    until_node,
)


async def _start(h: Harness, account: Account, flow_id: str, nap: float = 0) -> Execution:
    execution = await h.store.executions.create(
        account.id, flow_id=flow_id, flow_version=1, input={"nap": nap, "name": "b"}
    )
    assert await h.executor.submit(execution)
    return execution


async def _statuses(h: Harness, runs: list[Execution]) -> list[str]:
    return [(await h.store.executions.get(r.account_id, r.id)).status for r in runs]


async def _until_running(h: Harness, runs: list[Execution], count: int) -> None:
    for _ in range(200):  # a hang guard, not a time limit
        if (await _statuses(h, runs)).count("running") >= count:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"never {count} running: {await _statuses(h, runs)}")


async def test_a_waiting_account_runs_before_the_earlier_queued_runs_of_another(
    harnesses: HarnessFactory, store: Store, account: Account
) -> None:
    h = harnesses(concurrency=1)
    bob = await store.accounts.create("bob", "hash")
    ada_flow = await h.flow(BUSY)
    holder = await _start(h, account, ada_flow, 3600)  # holds the one slot until canceled
    ada = [await _start(h, account, ada_flow, 0.05) for _ in range(2)]
    bobs = await _start(h, bob, await h.flow(BUSY, account_id=bob.id), 0.05)
    assert await _statuses(h, [*ada, bobs]) == ["queued"] * 3
    slots = h.executor._slots

    async def all_waiting() -> bool:  # each queued run is in line for the slot, not before it
        return slots.waiting(account.id) == 2 and slots.waiting(bob.id) == 1

    await eventually(all_waiting, "the queued runs never all waited for the slot")
    assert await h.executor.cancel(holder)
    for run in (*ada, bobs):
        await h.executor.wait(run.id)
    done = {r.id: await store.executions.get(r.account_id, r.id) for r in (*ada, bobs)}
    assert [d.status for d in done.values()] == ["completed"] * 3
    order = sorted(done, key=lambda i: done[i].started_at or done[i].created_at)
    # First come first served would run ada's two first; bob's one goes next instead.
    assert order == [bobs.id, ada[0].id, ada[1].id]


async def test_an_account_at_its_cap_waits_while_another_account_runs(
    harnesses: HarnessFactory, store: Store, account: Account
) -> None:
    h = harnesses(concurrency=4, per_account=2)
    bob = await store.accounts.create("bob", "hash")
    ada = [await _start(h, account, await h.flow(BUSY), 30) for _ in range(4)]
    await _until_running(h, ada, 2)
    bobs = await _start(h, bob, await h.flow(STEPS, account_id=bob.id))
    await h.executor.wait(bobs.id)
    assert await _statuses(h, [bobs]) == ["completed"]
    statuses = await _statuses(h, ada)
    assert sorted(statuses) == ["queued", "queued", "running", "running"]
    for run in ada:
        assert await h.executor.cancel(run)
    assert await _statuses(h, ada) == ["canceled"] * 4


async def test_a_run_sleeping_in_a_delay_holds_no_slot_and_takes_one_back_after(
    harnesses: HarnessFactory, store: Store, account: Account
) -> None:
    h = harnesses(concurrency=1)
    bob = await store.accounts.create("bob", "hash")
    # The nap is long beside bob's 0.2 s so that a loaded machine still finishes bob first.
    sleeping = await _start(h, account, await h.flow(SLOW), 5.0)
    await until_node(h, sleeping.id, "nap", "started")  # asleep: its slot is free
    bobs = await _start(h, bob, await h.flow(BUSY, account_id=bob.id), 0.2)
    await h.executor.wait(bobs.id)
    # Bob's run had the only slot while ada's slept (or waited for it back after).
    assert await _statuses(h, [bobs, sleeping]) == ["completed", "running"]
    await h.executor.wait(sleeping.id)
    assert await _statuses(h, [sleeping]) == ["completed"]


async def test_many_sleeping_runs_of_one_account_do_not_count_against_the_concurrency(
    harnesses: HarnessFactory, store: Store, account: Account
) -> None:
    h = harnesses(concurrency=2, per_account=1)
    bob = await store.accounts.create("bob", "hash")
    flow_id = await h.flow(SLOW)
    sleepers = [await _start(h, account, flow_id, 3600) for _ in range(5)]
    await _until_running(h, sleepers, 5)
    bobs = await _start(h, bob, await h.flow(STEPS, account_id=bob.id))
    await h.executor.wait(bobs.id)
    assert await _statuses(h, [bobs]) == ["completed"]
    assert await _statuses(h, sleepers) == ["running"] * 5
    for run in sleepers:  # a sleeping run is canceled without waiting for a slot
        assert await h.executor.cancel(run)
    assert await _statuses(h, sleepers) == ["canceled"] * 5


async def test_a_run_canceled_while_waiting_to_take_its_slot_back_frees_nothing_twice(
    harnesses: HarnessFactory, store: Store, account: Account
) -> None:
    h = harnesses(concurrency=1)
    bob = await store.accounts.create("bob", "hash")
    sleeping = await _start(h, account, await h.flow(SLOW), 1.0)
    await _until_running(h, [sleeping], 1)
    busy = await _start(h, bob, await h.flow(BUSY, account_id=bob.id), 3600)
    slots = h.executor._slots  # the only way to see a run wait for its slot back
    for _ in range(200):  # a hang guard: until ada's delay is over and it waits behind bob
        if slots.waiting(account.id) == 1:
            break
        await asyncio.sleep(0.05)
    assert slots.waiting(account.id) == 1
    assert await h.executor.cancel(sleeping)
    assert await h.executor.cancel(busy)
    after = await _start(h, bob, await h.flow(STEPS, account_id=bob.id))
    await h.executor.wait(after.id)  # the one slot is free again: nothing leaked
    assert await _statuses(h, [sleeping, busy, after]) == ["canceled", "canceled", "completed"]
    assert (slots.in_use, slots.waiting(account.id)) == (0, 0)


PARALLEL_NAPS = """
metadata: {name: parallel naps}
nodes:
  naps:
    type: delay
    batch: {items: [1, 2, 3, 4], strategy: parallel}
    params: {duration: "${shared.nap}"}
    next: {default: last}
  last:
    type: set
    params: {values: {done: true}}
"""


async def test_parallel_sleeps_in_one_run_give_one_slot_back_and_take_one_again(
    harnesses: HarnessFactory, store: Store, account: Account
) -> None:
    h = harnesses(concurrency=1)
    bob = await store.accounts.create("bob", "hash")
    naps = await _start(h, account, await h.flow(PARALLEL_NAPS), 2.0)
    await _until_running(h, [naps], 1)
    bobs = await _start(h, bob, await h.flow(STEPS, account_id=bob.id))
    await h.executor.wait(bobs.id)
    assert await _statuses(h, [bobs, naps]) == ["completed", "running"]
    await h.executor.wait(naps.id)
    assert await _statuses(h, [naps]) == ["completed"]
    after = await _start(h, bob, await h.flow(STEPS, account_id=bob.id))
    await h.executor.wait(after.id)  # the one slot came back: nothing leaked, nothing stuck
    assert await _statuses(h, [after]) == ["completed"]


RETRIES = """
metadata: {name: retries slowly}
nodes:
  flaky:
    type: fail
    params: {message: "not yet"}
    retry: {max_retries: 1, wait: 1h}
"""


async def test_a_run_waiting_to_retry_holds_no_slot(
    harnesses: HarnessFactory, store: Store, account: Account
) -> None:
    h = harnesses(concurrency=1)
    bob = await store.accounts.create("bob", "hash")
    retrying = await _start(h, account, await h.flow(RETRIES))
    await _until_running(h, [retrying], 1)
    bobs = await _start(h, bob, await h.flow(STEPS, account_id=bob.id))
    await h.executor.wait(bobs.id)
    assert await _statuses(h, [bobs, retrying]) == ["completed", "running"]
    assert await h.executor.cancel(retrying)
    assert await _statuses(h, [retrying]) == ["canceled"]


CUT_SHORT = """
metadata: {name: cut short}
nodes:
  nap:
    type: delay
    params: {duration: 1h}
    timeout: 5s
    next: {default: never, error: after}
  never: {type: set, params: {values: {slept: true}}}
  after: {type: set, params: {values: {cut: true}}}
"""


async def test_the_node_after_a_delay_cut_short_by_its_timeout_waits_for_a_slot(
    harnesses: HarnessFactory, store: Store, account: Account
) -> None:
    h = harnesses(concurrency=1)
    bob = await store.accounts.create("bob", "hash")
    cut = await _start(h, account, await h.flow(CUT_SHORT))
    await until_node(h, cut.id, "nap", "started")  # asleep: its slot is free
    # Bob takes the free slot well before the nap's 5 s timeout fires.
    busy = await _start(h, bob, await h.flow(BUSY, account_id=bob.id), 3600)
    await _until_running(h, [busy], 1)
    slots = h.executor._slots  # the only way to see a run wait for its slot back

    async def after_waits() -> bool:  # the timeout fired and `after` waits for a slot
        return slots.waiting(account.id) == 1

    await eventually(after_waits, "the node after the cut-short nap never waited for a slot")
    assert await _statuses(h, [cut, busy]) == ["running", "running"]
    assert slots.waiting(account.id) == 1
    assert await h.executor.cancel(busy)
    await h.executor.wait(cut.id)
    done = await store.executions.get(account.id, cut.id)
    assert (done.status, done.output) == ("completed", {"cut": True})
    assert slots.in_use == 0
