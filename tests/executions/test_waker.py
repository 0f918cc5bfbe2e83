"""The waker on a test clock: a durable wait is woken when its time has come, not before, and
a ``wait_for`` that timed out takes its ``timeout`` edge (real store, real runner)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from flowrunner.executions import FlowCache, InProcessBus, Runner
from flowrunner.executions.waker import Waker
from flowrunner.storage import Execution
from flowrunner.storage.sql import SqlStore
from tests.executions.conftest import secrets_of
from tests.storage.backends import FakeClock

TIMEOUT = """
metadata: {name: timeout}
nodes:
  approve:
    type: wait_for
    params: {name: decision, timeout: 2h}
    next: {default: decided, timeout: late}
  decided: {type: set, params: {values: {outcome: decided}}}
  late: {type: set, params: {values: {outcome: late}}}
"""


class RunsHere:
    """An executor that runs each submitted run to its end at once (the waker's contract
    is to claim and submit; when the runner then runs it is the executor's business)."""

    owner = "here"

    def __init__(self, runner: Runner) -> None:
        self._runner = runner
        self.ran: list[Execution] = []

    async def submit(self, execution: Execution) -> bool:
        self.ran.append(await self._runner.run(execution))
        return True

    async def cancel(self, execution: Execution) -> Execution:
        raise NotImplementedError

    def holds(self, execution_id: str) -> bool:
        return False

    async def wait(self, execution_id: str, within: float | None = None) -> None:
        return None

    async def shutdown(self, grace: float) -> None:
        return None


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def store(store_url: str, clock: FakeClock) -> AsyncIterator[SqlStore]:
    opened = SqlStore(store_url, migrate=False, clock=clock)
    await opened.connect()
    if not store_url.startswith("sqlite"):
        await opened.truncate_all()
    yield opened
    await opened.close()


async def test_a_timed_out_wait_for_takes_its_timeout_edge_when_due_and_not_before(
    store: SqlStore, clock: FakeClock
) -> None:
    account = await store.accounts.create("ada", "hash")
    flow = await store.flows.create(account.id, name="timeout")
    await store.flows.add_version(account.id, flow.id, yaml=TIMEOUT)
    runner = Runner(
        store, InProcessBus(), FlowCache(), secrets=secrets_of, clock=clock, wait_threshold=1.0
    )
    here = RunsHere(runner)
    waker = Waker(store.executions, here)
    run = await store.executions.create(account.id, flow_id=flow.id, flow_version=1)
    started = clock.now
    parked = await runner.run(run)
    assert parked.status == "waiting"
    assert parked.wake_at is not None
    assert timedelta(hours=2) <= parked.wake_at - started < timedelta(hours=2, seconds=1)

    clock.advance(timedelta(hours=1, minutes=59))
    assert await waker.wake_once() == 0  # not due yet
    assert (await store.executions.get(account.id, run.id)).status == "waiting"

    clock.advance(timedelta(minutes=2))
    assert await waker.wake_once() == 1
    [done] = here.ran
    assert done.status == "completed"
    assert done.output == {"outcome": "late"}
    events = await store.executions.list_events(account.id, run.id)
    finished = [
        (e.data["node_id"], e.data.get("action"))
        for e in events
        if e.type == "node" and e.data.get("state") == "finished"
    ]
    assert finished == [("approve", "timeout"), ("late", None)]
    assert await waker.wake_once() == 0  # woken once
