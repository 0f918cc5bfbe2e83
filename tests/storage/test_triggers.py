"""Conformance: trigger records and single-firing schedules, on every backend.

Triggers live in the key-value store (two copies: the account's, and the system index by
id), and a schedule's occurrence fires exactly once because its run is created with the
idempotency key ``schedule:<trigger>:<occurrence>`` — a conditional insert on every backend.
Two ``Scheduler`` objects over one store stand for two server processes sharing a database
(the e2e test ``tests/e2e/test_schedules.py`` runs two real servers). The clock is injected:
the store's ``FakeClock`` drives both the records and the schedulers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from flowrunner.definition.triggers import schedule_spec
from flowrunner.errors import NotFound
from flowrunner.executions.bus import InProcessBus
from flowrunner.executions.service import ExecutionService
from flowrunner.storage import Account, Execution, Store
from flowrunner.triggers import Scheduler, TriggerRepository
from flowrunner.triggers.records import config_of
from tests.storage.backends import FakeClock

FLOW = "metadata: {name: tick}\nnodes:\n  a: {type: log, params: {message: hi}}\n"


class Submitted:
    """The executor seam: these tests are about which runs exist, not about running them
    (the e2e tests run them for real)."""

    owner = "test"

    def __init__(self) -> None:
        self.runs: list[Execution] = []

    async def submit(self, execution: Execution) -> bool:
        self.runs.append(execution)
        return True

    async def cancel(self, execution: Execution) -> Execution:
        return execution  # the scheduler tests cancel nothing

    def holds(self, execution_id: str) -> bool:
        return False

    async def wait(self, execution_id: str, within: float | None = None) -> None:
        return None

    async def shutdown(self, grace: float) -> None:
        return None


async def _flow(store: Store, account: Account) -> str:
    flow = await store.flows.create(account.id, name="tick")
    await store.flows.add_version(account.id, flow.id, yaml=FLOW, expected_current=0)
    return flow.id


async def _schedule(repo: TriggerRepository, account: Account, flow_id: str, **body: Any) -> str:
    spec = schedule_spec("every", body)
    trigger = await repo.create(
        account.id, flow_id=flow_id, name="every", kind="schedule", source="api",
        config=config_of(spec),
    )  # fmt: skip
    return trigger.id


def _scheduler(store: Store, clock: FakeClock, **options: Any) -> tuple[Scheduler, Submitted]:
    executor = Submitted()
    runs = ExecutionService(store, executor, InProcessBus())
    return Scheduler(TriggerRepository(store, clock), runs, clock=clock, **options), executor


async def _occurrences(store: Store, account: Account, flow_id: str) -> list[str]:
    page = await store.executions.list(account.id, flow_id=flow_id, limit=1000)
    found = []
    for run in page.items:
        assert isinstance(run.input, Mapping)
        trigger = run.input["trigger"]
        assert isinstance(trigger, Mapping)
        found.append(str(trigger["occurrence"]))
    return sorted(found)


async def test_trigger_records_are_found_by_id_and_scoped_by_account(
    store: Store, account: Account, other: Account, clock: FakeClock
) -> None:
    repo = TriggerRepository(store, clock)
    flow_id = await _flow(store, account)
    trigger_id = await _schedule(repo, account, flow_id, interval=60)
    assert (await repo.find(trigger_id)).account_id == account.id
    assert (await repo.get(account.id, trigger_id)).flow_id == flow_id
    with pytest.raises(NotFound):
        await repo.get(other.id, trigger_id)
    assert [t.id for t in (await repo.list(account.id, flow_id=flow_id)).items] == [trigger_id]
    assert (await repo.list(other.id)).items == []
    assert [t.id async for t in repo.schedules()] == [trigger_id]
    # Not in the account's own key-value store, which its flows edit with the store node.
    for namespace in ("triggers", "schedules", "default"):
        assert (await store.kv.list(account.id, namespace)).items == []
    await repo.delete(account.id, trigger_id)
    with pytest.raises(NotFound):
        await repo.find(trigger_id)
    assert [t async for t in repo.schedules()] == []


async def test_a_schedule_fires_on_time_once_per_occurrence_with_two_schedulers(
    store: Store, account: Account, clock: FakeClock
) -> None:
    flow_id = await _flow(store, account)
    repo = TriggerRepository(store, clock)
    clock.now = datetime(2026, 1, 1, 0, 0, 30, tzinfo=UTC)
    trigger_id = await _schedule(repo, account, flow_id, interval=60)
    first, ran_first = _scheduler(store, clock)
    second, ran_second = _scheduler(store, clock)
    assert await first.tick() == []  # not due before 00:01:00
    clock.advance(timedelta(seconds=29))
    assert list(await asyncio.gather(first.tick(), second.tick())) == [[], []]
    for _ in range(3):
        clock.advance(timedelta(seconds=60))
        fired = [f for batch in await asyncio.gather(first.tick(), second.tick()) for f in batch]
        # Both may find it due; exactly one run exists per occurrence (one of them created it).
        assert len({f.execution_id for f in fired}) == 1
        assert sum(f.created for f in fired) == 1
    assert await _occurrences(store, account, flow_id) == [
        "2026-01-01T00:01:00+00:00", "2026-01-01T00:02:00+00:00", "2026-01-01T00:03:00+00:00",
    ]  # fmt: skip
    assert len(ran_first.runs) + len(ran_second.runs) == 3
    run = (await store.executions.list(account.id, flow_id=flow_id)).items[0]
    assert run.idempotency_key == f"schedule:{trigger_id}:2026-01-01T00:03:00+00:00"


@pytest.mark.parametrize(
    ("catch_up", "expected"),
    [
        ("none", []),
        ("latest", ["2026-01-01T05:00:00+00:00"]),
        ("all", [f"2026-01-01T0{h}:00:00+00:00" for h in range(1, 6)]),
    ],
)
async def test_missed_occurrences_after_downtime_follow_catch_up(
    store: Store, account: Account, clock: FakeClock, catch_up: str, expected: list[str]
) -> None:
    flow_id = await _flow(store, account)
    repo = TriggerRepository(store, clock)
    clock.now = datetime(2026, 1, 1, 0, 0, 10, tzinfo=UTC)
    await _schedule(repo, account, flow_id, cron="0 * * * *", catch_up=catch_up)
    scheduler, _ = _scheduler(store, clock)
    await scheduler.tick()
    clock.advance(timedelta(hours=5, minutes=20))  # the server was down from 00:00 to 05:20
    await scheduler.tick()
    assert await _occurrences(store, account, flow_id) == expected
    # And then it keeps time: the next hour fires, whatever the policy (none: ticked within
    # its grace of 5 s, as the 1 s ticks of a running server are).
    clock.advance(timedelta(minutes=39, seconds=52))
    await scheduler.tick()
    assert (await _occurrences(store, account, flow_id))[-1] == "2026-01-01T06:00:00+00:00"


async def test_catch_up_all_is_bounded(store: Store, account: Account, clock: FakeClock) -> None:
    flow_id = await _flow(store, account)
    repo = TriggerRepository(store, clock)
    clock.now = datetime(2026, 1, 1, tzinfo=UTC)
    await _schedule(repo, account, flow_id, interval=1, catch_up="all")
    scheduler, _ = _scheduler(store, clock, max_catch_up=5)
    clock.advance(timedelta(hours=1))
    fired = await scheduler.tick()
    assert len(fired) == 5
    assert fired[-1].occurrence == datetime(2026, 1, 1, 1, 0, 0, tzinfo=UTC)


async def test_a_disabled_schedule_does_not_fire(
    store: Store, account: Account, clock: FakeClock
) -> None:
    flow_id = await _flow(store, account)
    repo = TriggerRepository(store, clock)
    trigger_id = await _schedule(repo, account, flow_id, interval=60)
    trigger = await repo.get(account.id, trigger_id)
    from dataclasses import replace

    await repo.save(replace(trigger, enabled=False))
    scheduler, _ = _scheduler(store, clock)
    clock.advance(timedelta(minutes=5))
    assert await scheduler.tick() == []
