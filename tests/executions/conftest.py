"""Fixtures for run tests: a real store (SQLite and PostgreSQL), a bus, a runner, an executor.

Leases and timers need real time, so these stores use the wall clock.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, ClassVar

import pytest

from flowrunner.executions import (
    ExecutionService,
    FlowCache,
    InProcessBus,
    LocalExecutor,
    Runner,
)
from flowrunner.nodes.base import Call, DefinedNode, DefinedNodeType
from flowrunner.plugins import NodeTypeRegistry, builtin_registry
from flowrunner.storage import Account, ExecutionEvent, NewCheckpoint, NewEvent, Store
from flowrunner.storage.sql import SqlStore
from tests.conftest import HANG_GUARD, require_service
from tests.storage.conftest import scratch_postgres_database

SECRETS = {"TOKEN": "s3cr3t-value"}


@pytest.fixture(scope="session")
def run_postgres_database() -> Iterator[str]:
    server = require_service("FLOWRUNNER_TEST_POSTGRES_URL", "PostgreSQL")
    yield from scratch_postgres_database(server, migrate=True)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated, empty database (sync, so session fixtures can run their own loops)."""
    if request.param == "postgres":
        url: str = request.getfixturevalue("run_postgres_database")
        return url
    template: Path = request.getfixturevalue("sqlite_template")
    db = tmp_path / "runs.db"
    db.write_bytes(template.read_bytes())
    return f"sqlite:///{db}"


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[Store]:
    opened = SqlStore(store_url, migrate=False)
    await opened.connect()
    if not store_url.startswith("sqlite"):
        await opened.truncate_all()
    yield opened
    await opened.close()


@pytest.fixture
async def account(store: Store) -> Account:
    return await store.accounts.create("ada", "hash")


async def secrets_of(account_id: str) -> Mapping[str, str]:
    return SECRETS


@dataclass
class Harness:
    store: Store
    bus: InProcessBus
    runner: Runner
    executor: LocalExecutor
    service: ExecutionService
    account: Account
    gate: Gate

    async def flow(self, yaml: str, *, account_id: str | None = None) -> str:
        """A stored flow with ``yaml`` as its first version; its id."""
        owner = account_id or self.account.id
        flow = await self.store.flows.create(owner, name="test")
        await self.store.flows.add_version(owner, flow.id, yaml=yaml)
        return flow.id


class BusyNode(DefinedNode):
    """Works for ``seconds`` while holding its run's executor slot, as a node waiting on an
    HTTP reply does (a ``delay`` lets the slot go)."""

    __slots__ = ()

    async def work(self, call: Call) -> Any:
        await asyncio.sleep(float(call.params["seconds"]))
        return call.input


class Gate:
    """Holds every ``gated`` node of a harness while it works, until the test opens it.

    Tests wait for ``arrived`` nodes instead of sleeping and hoping the runs got that far:
    a node inside the gate holds its executor slot and provably has not finished.
    """

    def __init__(self) -> None:
        self.arrived = 0
        self._changed = asyncio.Condition()
        self._opened = asyncio.Event()

    async def enter(self) -> None:
        async with self._changed:
            self.arrived += 1
            self._changed.notify_all()
        await self._opened.wait()

    async def until_arrived(self, count: int) -> None:
        async with asyncio.timeout(HANG_GUARD), self._changed:
            await self._changed.wait_for(lambda: self.arrived >= count)

    def open(self) -> None:
        self._opened.set()


class GatedNode(DefinedNode):
    """Works, holding its run's executor slot, until its harness's gate opens."""

    __slots__ = ()
    gate: ClassVar[Gate]

    async def work(self, call: Call) -> Any:
        await self.gate.enter()
        return call.input


def registry_with_busy(gate: Gate | None = None) -> NodeTypeRegistry:
    registry = builtin_registry()
    registry.register(DefinedNodeType("busy", "test: work a while", BusyNode, {"type": "object"}))
    # A subclass per harness, so the gate is the harness's own and not a module global.
    gated = type("HarnessGatedNode", (GatedNode,), {"__slots__": (), "gate": gate or Gate()})
    registry.register(
        DefinedNodeType("gated", "test: work until let go", gated, {"type": "object"})
    )
    return registry


async def eventually(check: Callable[[], Awaitable[bool]], what: str) -> None:
    """Polls ``check`` until it holds: for a state other tasks reach with no event to await.
    Only a hang fails it (``HANG_GUARD``), never slowness."""
    async with asyncio.timeout(HANG_GUARD):
        while not await check():  # noqa: ASYNC110 - the state lives in the store
            await asyncio.sleep(0.02)
    assert await check(), what


async def until_node(h: Harness, execution_id: str, node_id: str, state: str) -> None:
    """Until the run's stored events say ``node_id`` reached ``state`` (a node's ``started``
    is stored by the recorder's flush timer while the node still works)."""

    async def reached() -> bool:
        events = await h.store.executions.list_events(h.account.id, execution_id)
        return (node_id, state) in [(e.data.get("node_id"), e.data.get("state")) for e in events]

    await eventually(reached, f"{node_id} never {state}")


def make_harness(
    store: Store,
    account: Account,
    *,
    concurrency: int = 4,
    per_account: int | None = None,
    ttl: float = 2.0,
    owner: str = "t",
) -> Harness:
    bus = InProcessBus()
    gate = Gate()
    flows = FlowCache(registry=registry_with_busy(gate))
    runner = Runner(store, bus, flows, secrets=secrets_of, payload_limit=2048)
    executor = LocalExecutor(
        runner,
        store.executions,
        concurrency=concurrency,
        per_account=per_account,
        lease_ttl=timedelta(seconds=ttl),
        owner=owner,
    )
    service = ExecutionService(
        store, executor, bus, max_input_bytes=10_000, lease_ttl=timedelta(seconds=ttl)
    )
    return Harness(store, bus, runner, executor, service, account, gate)


HarnessFactory = Callable[..., Harness]


@pytest.fixture
async def harnesses(store: Store, account: Account) -> AsyncIterator[HarnessFactory]:
    """Builds harnesses on the test's store; shuts every executor down afterwards."""
    built: list[Harness] = []

    def build(**options: Any) -> Harness:
        built.append(make_harness(store, account, **options))
        return built[-1]

    yield build
    for h in built:
        await h.executor.shutdown(grace=0.5)


@pytest.fixture
def harness(harnesses: HarnessFactory) -> Harness:
    return harnesses()


STEPS = """
metadata: {name: steps}
nodes:
  first:
    type: set
    params: {values: {greeting: "hi ${input.name}"}}
    next: {default: second}
  second:
    type: log
    params: {message: "said ${shared.greeting}"}
    next: {default: third}
  third:
    type: set
    params: {values: {done: true}}
"""

SLOW = """
metadata: {name: slow}
nodes:
  first:
    type: set
    params: {values: {step: 1}}
    next: {default: nap}
  nap:
    type: delay
    params: {duration: "${shared.nap}"}
    next: {default: last}
  last:
    type: set
    params: {values: {step: 3}}
"""

# Like SLOW, but its middle node holds the run's executor slot while it works.
BUSY = """
metadata: {name: busy}
nodes:
  first:
    type: set
    params: {values: {step: 1}}
    next: {default: nap}
  nap:
    type: busy
    params: {seconds: "${shared.nap}"}
    next: {default: last}
  last:
    type: set
    params: {values: {step: 3}}
"""

# Like BUSY, but its middle node holds the slot until the test opens the harness's gate.
GATED = """
metadata: {name: gated}
nodes:
  first:
    type: set
    params: {values: {step: 1}}
    next: {default: nap}
  nap:
    type: gated
    next: {default: last}
  last:
    type: set
    params: {values: {step: 3}}
"""

FAILING = """
metadata: {name: failing}
nodes:
  ok:
    type: set
    params: {values: {before: true}}
    next: {default: boom}
  boom:
    type: fail
    params: {message: "broke with ${secrets.TOKEN}"}
"""


def written_checkpoints(h: Harness) -> list[NewCheckpoint]:
    """Every checkpoint the runner saves, as the store receives it (a completed run's own
    checkpoint is deleted when it ends, so the tests look at what was written)."""
    written: list[NewCheckpoint] = []
    runs = h.store.executions
    record_step = runs.record_step

    async def spy(
        account_id: str,
        execution_id: str,
        events: Sequence[NewEvent],
        *,
        checkpoint: NewCheckpoint | None = None,
        **rest: Any,
    ) -> list[ExecutionEvent]:
        if checkpoint is not None:
            written.append(checkpoint)
        return await record_step(account_id, execution_id, events, checkpoint=checkpoint, **rest)

    runs.record_step = spy  # type: ignore[method-assign]
    return written
