"""Cluster-wide run limits in Redis: slots per account and per flow, parked runs woken in
order when a slot frees up or lapses."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable

import pytest

from flowrunner.executions.cluster_limits import ClusterLimits, Ticket
from tests.conftest import require_service

Limits = Callable[..., ClusterLimits]


@pytest.fixture
async def limits() -> AsyncIterator[Limits]:
    url = require_service("FLOWRUNNER_TEST_REDIS_URL", "Redis")
    # A prefix of its own: parallel test runs on the shared server never see each other.
    prefix = f"flowrunner-test:{os.getpid()}:{os.urandom(3).hex()}:"
    made: list[ClusterLimits] = []

    def make(**options: object) -> ClusterLimits:
        settings: dict[str, object] = {"per_account": None, "per_flow": None, "ttl_seconds": 30}
        settings.update(options)
        made.append(ClusterLimits(url, prefix=prefix, **settings))  # type: ignore[arg-type]
        return made[-1]

    yield make
    for one in made:
        await one.close()


def run(n: int, account: str = "a", flow: str = "f") -> Ticket:
    return Ticket(account, f"{account}-{flow}-{n}", flow, "q")


async def test_an_account_at_its_limit_parks_its_runs_while_another_account_runs(
    limits: Limits,
) -> None:
    cluster = limits(per_account=2)
    assert [await cluster.take(run(n)) for n in range(5)] == [True, True, False, False, False]
    assert await cluster.take(run(0, account="b"))  # another account: its own slots
    # A duplicate message of a parked run parks it once.
    assert not await cluster.take(run(2))
    # A slot freed wakes the account's oldest parked run, one per free slot.
    assert await cluster.release(run(0)) == [run(2)]
    assert await cluster.take(run(2))
    assert await cluster.release(run(1)) == [run(3)]
    assert await cluster.release(run(0, account="b")) == []  # b had nothing parked


async def test_two_workers_share_one_limit(limits: Limits) -> None:
    first, second = limits(per_account=3), limits(per_account=3)
    taken = await asyncio.gather(*(w.take(run(n)) for n, w in enumerate([first, second] * 4)))
    assert sum(taken) == 3


async def test_a_flow_at_its_limit_parks_its_runs_but_not_the_accounts_other_flows(
    limits: Limits,
) -> None:
    cluster = limits(per_flow=1)
    assert await cluster.take(run(0, flow="heavy"))
    assert not await cluster.take(run(1, flow="heavy"))
    assert await cluster.take(run(0, flow="light"))
    assert await cluster.release(run(0, flow="heavy")) == [run(1, flow="heavy")]


async def test_slots_of_a_dead_worker_lapse_and_the_sweep_wakes_the_parked_runs(
    limits: Limits,
) -> None:
    dead = limits(per_account=1, ttl_seconds=2)
    alive = limits(per_account=1, ttl_seconds=30)
    assert await dead.take(run(0))
    assert not await alive.take(run(1))
    assert await alive.due() == []  # the slot is still held
    await asyncio.sleep(2.1)  # the dead worker renews nothing: its slot lapses
    assert await alive.due() == [run(1)]
    assert await alive.due() == []  # woken once


async def test_renewing_keeps_a_running_runs_slot(limits: Limits) -> None:
    cluster = limits(per_account=1, ttl_seconds=3)
    assert await cluster.take(run(0))
    await asyncio.sleep(2)
    await cluster.renew([run(0)])
    await asyncio.sleep(2)
    assert not await cluster.take(run(1))  # past its first expiry, still held


async def test_without_limits_every_run_goes_and_redis_is_not_asked(limits: Limits) -> None:
    cluster = limits()
    assert not cluster.enabled
    assert all([await cluster.take(run(n)) for n in range(10)])
    assert await cluster.release(run(0)) == []
