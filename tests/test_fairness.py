"""The fair per-key semaphore: grant order across keys, the per-key cap, cancellation, and
the run slot a sleeping node lets go."""

from __future__ import annotations

import asyncio

import pytest

from flowrunner.fairness import RUN_SLOT, FairSemaphore, Slot, idle, reclaim


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def _waiter(semaphore: FairSemaphore, key: str, granted: list[str]) -> asyncio.Task[None]:
    async def wait() -> None:
        await semaphore.acquire(key)
        granted.append(key)

    return asyncio.get_running_loop().create_task(wait())


async def test_a_waiting_key_is_served_before_a_key_that_already_holds_slots() -> None:
    semaphore = FairSemaphore(2)
    await semaphore.acquire("a")
    await semaphore.acquire("a")
    granted: list[str] = []
    tasks = [_waiter(semaphore, "a", granted) for _ in range(3)]
    await _settle()
    tasks.append(_waiter(semaphore, "b", granted))  # arrives after a's three
    await _settle()
    assert granted == []
    semaphore.release("a")
    await _settle()
    assert granted == ["b"]
    semaphore.release("a")
    await _settle()
    assert granted == ["b", "a"]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def test_try_acquire_takes_only_what_acquire_would_grant_at_once() -> None:
    semaphore = FairSemaphore(2, per_key=1)
    assert semaphore.try_acquire("a")
    assert not semaphore.try_acquire("a")  # its cap
    granted: list[str] = []
    waiter = _waiter(semaphore, "a", granted)
    await _settle()
    assert semaphore.try_acquire("b")
    assert not semaphore.try_acquire("c")  # no slot left
    semaphore.release("b")
    await _settle()
    assert granted == []  # a's waiter is still over a's cap: the free slot is c's
    assert semaphore.try_acquire("c")
    semaphore.release("a")
    await _settle()
    assert granted == ["a"]
    assert not semaphore.try_acquire("a")
    await waiter


async def test_keys_holding_as_many_are_served_round_robin() -> None:
    semaphore = FairSemaphore(1)
    await semaphore.acquire("x")
    granted: list[str] = []
    tasks = [_waiter(semaphore, key, granted) for key in ("a", "a", "a", "b", "b", "c")]
    await _settle()
    holder = "x"
    for _ in range(6):
        semaphore.release(holder)
        await _settle()
        holder = granted[-1]
    assert granted == ["a", "b", "c", "a", "b", "a"]
    semaphore.release(holder)
    await asyncio.gather(*tasks)
    assert semaphore.in_use == 0


async def test_a_key_never_holds_more_than_its_cap_even_with_free_slots() -> None:
    semaphore = FairSemaphore(4, per_key=2)
    await semaphore.acquire("a")
    await semaphore.acquire("a")
    granted: list[str] = []
    blocked = _waiter(semaphore, "a", granted)
    await _settle()
    assert granted == []
    assert semaphore.in_use == 2
    await semaphore.acquire("b")  # another key takes a free slot at once
    assert semaphore.held("b") == 1
    semaphore.release("a")
    await blocked
    assert granted == ["a"]
    assert semaphore.held("a") == 2


async def test_a_canceled_waiter_leaves_the_queue_and_takes_no_slot() -> None:
    semaphore = FairSemaphore(1)
    await semaphore.acquire("a")
    granted: list[str] = []
    canceled = _waiter(semaphore, "b", granted)
    later = _waiter(semaphore, "c", granted)
    await _settle()
    canceled.cancel()
    await asyncio.gather(canceled, return_exceptions=True)
    assert semaphore.waiting("b") == 0
    semaphore.release("a")
    await later
    assert granted == ["c"]
    semaphore.release("c")
    assert semaphore.in_use == 0


async def test_a_waiter_canceled_just_after_its_grant_passes_the_slot_on() -> None:
    semaphore = FairSemaphore(1)
    await semaphore.acquire("a")
    granted: list[str] = []
    canceled = _waiter(semaphore, "b", granted)
    later = _waiter(semaphore, "c", granted)
    await _settle()
    semaphore.release("a")  # grants b's future ...
    canceled.cancel()  # ... and b is canceled before it could run
    await asyncio.gather(canceled, return_exceptions=True)
    await later
    assert granted == ["c"]
    assert semaphore.held("b") == 0
    semaphore.release("c")
    assert semaphore.in_use == 0


async def test_holders_and_waiters_canceled_together_leak_no_slot() -> None:
    semaphore = FairSemaphore(1)
    forever = asyncio.Event()

    async def hold(key: str) -> None:
        await semaphore.acquire(key)
        try:
            await forever.wait()
        finally:
            semaphore.release(key)

    tasks = [asyncio.get_running_loop().create_task(hold(k)) for k in ("a", "a", "b")]
    await _settle()
    for task in tasks:  # the holder's release meets waiters canceled but not yet woken
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    assert semaphore.in_use == 0
    assert (semaphore.waiting("a"), semaphore.waiting("b")) == (0, 0)
    await semaphore.acquire("c")


async def test_a_timeout_while_waiting_leaks_no_slot() -> None:
    semaphore = FairSemaphore(1)
    await semaphore.acquire("a")
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.01):
            await semaphore.acquire("b")
    semaphore.release("a")
    assert semaphore.in_use == 0
    assert semaphore.waiting("b") == 0


def test_releasing_a_slot_not_held_is_an_error() -> None:
    with pytest.raises(RuntimeError):
        FairSemaphore(1).release("a")


def test_capacity_and_cap_must_be_positive() -> None:
    with pytest.raises(ValueError, match="capacity"):
        FairSemaphore(0)
    with pytest.raises(ValueError, match="per_key"):
        FairSemaphore(2, per_key=0)


async def test_a_sleeping_run_lets_its_slot_go_and_queues_fairly_to_take_it_back() -> None:
    semaphore = FairSemaphore(1)
    slot = Slot(semaphore, "a")
    await slot.take()
    woke = asyncio.Event()

    async def sleeper() -> None:
        RUN_SLOT.set(slot)  # the task's own context, as the executor's run task
        async with idle():
            await woke.wait()

    task = asyncio.get_running_loop().create_task(sleeper())
    await _settle()
    assert not slot.held
    await semaphore.acquire("b")  # another account runs while "a" sleeps
    woke.set()
    await _settle()
    assert not task.done()  # awake, waiting for its slot again
    semaphore.release("b")
    await task
    assert slot.held
    slot.give_back()
    assert semaphore.in_use == 0


async def test_a_sleep_cut_short_leaves_the_slot_to_reclaim_at_the_next_boundary() -> None:
    semaphore = FairSemaphore(1)
    slot = Slot(semaphore, "a")
    await slot.take()
    token = RUN_SLOT.set(slot)
    try:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.01), idle():
                await asyncio.sleep(10)
        assert not slot.held
        await reclaim()
        assert slot.held
    finally:
        RUN_SLOT.reset(token)
    slot.give_back()


async def test_idle_outside_a_run_does_nothing() -> None:
    assert RUN_SLOT.get() is None
    async with idle():
        pass
    await reclaim()
