"""PostgreSQL's hot path (``direct/postgres/``) against the SQLAlchemy path on a real server:
the same rows written, connections killed under it, and ended runs noticed across stores."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from datetime import timedelta

import asyncpg
import pytest

from flowrunner.executions.bus import InProcessBus
from flowrunner.executions.follow import Follower
from flowrunner.storage import EndNotices, Execution, NewCheckpoint, NewDelivery, NewEvent
from flowrunner.storage.sql import SqlStore
from flowrunner.storage.sql.direct.postgres.connection import DirectPostgres
from tests.conftest import HANG_GUARD
from tests.storage.backends import FakeClock

pytestmark = pytest.mark.postgres


@pytest.fixture
async def stores(postgres_database: str) -> AsyncIterator[tuple[SqlStore, SqlStore]]:
    """The hot path and the SQLAlchemy path on one database, each with its own clock
    (both start at the same instant, so the same calls stamp the same times)."""
    fast = SqlStore(postgres_database, clock=FakeClock(), migrate=False)
    slow = SqlStore(postgres_database, clock=FakeClock(), migrate=False, direct=False)
    assert isinstance(fast.executions, EndNotices)
    assert not isinstance(slow.executions, EndNotices)
    await fast.connect()
    await slow.connect()
    await fast.truncate_all()
    yield fast, slow
    await fast.close()
    await slow.close()


async def _one_run(store: SqlStore, account_id: str, flow_id: str, endpoint_id: str) -> str:
    """A run's store calls, as the runner makes them."""
    runs = store.executions
    execution = await runs.create(
        account_id, flow_id=flow_id, flow_version=1, input={"n": 1.0, "s": "x\u0000\ud800"}
    )
    await runs.acquire_lease(account_id, execution.id, owner="me", ttl=timedelta(seconds=30))
    hook = [NewDelivery(endpoint_id, "execution.running", {"id": "e"})]
    await runs.update(
        account_id, execution.id, expected_status=["queued"], status="running", outbox=hook
    )
    for i in range(3):
        await runs.record_step(
            account_id,
            execution.id,
            [NewEvent("node.started", {"node": f"n{i}"}), NewEvent("node.finished", {"i": i})],
            checkpoint=NewCheckpoint(
                shared={"i": i}, next_node=f"n{i + 1}", results={f"n{i}": [i]}, resume={"k": 1}
            ),
            progress=i / 3,
            current_node=f"n{i + 1}",
        )
    await runs.update(
        account_id,
        execution.id,
        expected_status=["running"],
        status="failed",
        error={"message": "no"},
        usage={"calls": 1, "total_tokens": 3, "nodes": {"n1": {"calls": 1}}},
        release_lease=True,
        outbox=[NewDelivery(endpoint_id, "execution.failed", {"id": "e"})],
        events=[NewEvent("node.failed", {"node": "n3"}), NewEvent("execution.failed", {})],
    )
    return execution.id


_ROWS = {
    "executions": "SELECT flow_version, status, input::text, output::text, error::text,"
    " progress, current_node, created_at, started_at, finished_at, lease_owner,"
    " lease_expires_at, idempotency_key, last_event_seq, resume_attempts, parent_id,"
    " usage::text"
    " FROM executions WHERE id = $1",
    "events": "SELECT seq, type, data::text, created_at FROM execution_events"
    " WHERE execution_id = $1 ORDER BY seq",
    "checkpoint": "SELECT shared::text, next_node, results::text, resume::text, updated_at"
    " FROM checkpoints WHERE execution_id = $1",
    "position": "SELECT progress, current_node FROM execution_positions WHERE execution_id = $1",
    "outbox": "SELECT event_type, payload::text, status, attempts, next_attempt_at, created_at"
    " FROM webhook_deliveries WHERE account_id = (SELECT account_id FROM executions"
    " WHERE id = $1) ORDER BY created_at, event_type",
}


async def test_both_paths_write_the_same_rows(
    stores: tuple[SqlStore, SqlStore], postgres_database: str
) -> None:
    written: list[dict[str, list[tuple[object, ...]]]] = []
    for store in stores:
        account = await store.accounts.create(f"user-{len(written)}", "h")
        flow = await store.flows.create(account.id, name="f")
        endpoint = await store.webhooks.create_endpoint(
            account.id, url="https://example.test/h", events=["*"], secret="s"
        )
        run_id = await _one_run(store, account.id, flow.id, endpoint.id)
        conn = await asyncpg.connect(postgres_database)
        try:
            rows: dict[str, list[tuple[object, ...]]] = {}
            for name, sql in _ROWS.items():
                rows[name] = [tuple(r) for r in await conn.fetch(sql, run_id)]
        finally:
            await conn.close()
        written.append(rows)
        # Each path reads what the other wrote, alike.
        other = stores[1] if store is stores[0] else stores[0]
        assert await other.executions.get(account.id, run_id) == await store.executions.get(
            account.id, run_id
        )
    fast, slow = written
    assert fast["events"]
    assert fast["checkpoint"]
    assert len(fast["outbox"]) == 2
    assert fast == slow


async def _kill_other_connections(dsn: str) -> None:
    """Terminate every other backend of the database, and return once they are gone."""
    admin = await asyncpg.connect(dsn)
    others = "FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
    try:
        await admin.execute(f"SELECT pg_terminate_backend(pid) {others}")
        async with asyncio.timeout(HANG_GUARD):
            while True:
                if await admin.fetchval(f"SELECT count(*) {others}") == 0:
                    return
                await asyncio.sleep(0.05)
    finally:
        await admin.close()


async def test_the_hot_path_survives_its_connections_being_killed(
    stores: tuple[SqlStore, SqlStore], postgres_database: str
) -> None:
    fast, _ = stores
    account = await fast.accounts.create("survivor", "h")
    flow = await fast.flows.create(account.id, name="f")
    run = await fast.executions.create(account.id, flow_id=flow.id, flow_version=1)
    await _kill_other_connections(postgres_database)
    assert (await fast.executions.get(account.id, run.id)).status == "queued"  # a read, re-run
    await _kill_other_connections(postgres_database)
    # A connection ended while idle is noticed (its socket closes) and replaced at checkout.
    # (One ended under a write that was sent is not retried: the write may have committed.)
    await asyncio.sleep(0.1)
    moved = await fast.executions.update(account.id, run.id, status="running")
    assert moved.status == "running"


async def test_a_run_ending_in_one_store_wakes_a_waiter_on_another(
    stores: tuple[SqlStore, SqlStore], postgres_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    fast, _ = stores
    # The waiter's own store, as another process would have.
    elsewhere = SqlStore(postgres_database, migrate=False)
    await elsewhere.connect()
    try:
        account = await fast.accounts.create("waiter", "h")
        flow = await fast.flows.create(account.id, name="f")
        runs = [
            await fast.executions.create(account.id, flow_id=flow.id, flow_version=1)
            for _ in range(2)
        ]
        assert isinstance(elsewhere.executions, EndNotices)
        final = [NewEvent("execution.completed", {})]
        async with elsewhere.executions.watch_end(runs[0].id) as ended:
            # Steps of a running run, and another run's end: no notice for this one.
            await fast.executions.update(account.id, runs[0].id, status="running")
            await fast.executions.append_events(account.id, runs[0].id, final)
            await fast.executions.update(
                account.id, runs[1].id, status="canceled", release_lease=True
            )
            await fast.executions.append_events(account.id, runs[1].id, final)
            assert not ended.is_set()
            # Its end: the final status with the final event, in one write, wakes the waiter.
            await fast.executions.update(
                account.id, runs[0].id, status="completed", release_lease=True, events=final
            )
            await asyncio.wait_for(ended.wait(), HANG_GUARD)

        # The follower (``?wait``) sleeps on the notice: with no periodic re-read at all,
        # only the notice can wake it before the deadline.
        monkeypatch.setattr("flowrunner.executions.follow.NOTICED_RECHECK_SECONDS", 3600.0)
        third = await fast.executions.create(account.id, flow_id=flow.id, flow_version=1)
        read = asyncio.Event()  # the follower read the run: it is watching since before
        real_get = elsewhere.executions.get

        async def get(account_id: str, execution_id: str) -> Execution:
            found = await real_get(account_id, execution_id)
            read.set()
            return found

        monkeypatch.setattr(elsewhere.executions, "get", get)
        follower = Follower(elsewhere, InProcessBus())
        deadline = time.monotonic() + 3600.0
        waiting = asyncio.ensure_future(follower.until_end(account.id, third.id, deadline))
        await asyncio.wait_for(read.wait(), HANG_GUARD)
        assert not waiting.done()
        await fast.executions.update(account.id, third.id, status="failed", release_lease=True)
        await fast.executions.append_events(account.id, third.id, [NewEvent("execution.failed")])
        done = await asyncio.wait_for(waiting, HANG_GUARD)
        assert done.status == "failed"
        assert done.last_event_seq == 1  # woken once the run was whole
    finally:
        await elsewhere.close()


async def _waiting(dsn: str) -> int:
    admin = await asyncpg.connect(dsn)
    try:
        count: int = await admin.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND query LIKE 'SELECT pg_advisory_xact_lock%' AND state = 'active'"
        )
        return count
    finally:
        await admin.close()


async def _until_waiting(dsn: str, done: Callable[[int], bool]) -> None:
    """Until the number of statements waiting on the test's lock satisfies ``done`` (the
    server's own view; polled, as nothing signals it)."""
    async with asyncio.timeout(HANG_GUARD):
        while True:
            if done(await _waiting(dsn)):
                return
            await asyncio.sleep(0.05)


async def test_connections_are_bounded_and_an_interrupted_one_is_not_reused(
    postgres_database: str,
) -> None:
    direct = DirectPostgres(postgres_database, max_size=2)
    try:
        # Each statement waits for a lock another connection holds, until it lets go.
        gate = "SELECT pg_advisory_xact_lock(4242)"
        holder = await asyncpg.connect(postgres_database)
        await holder.execute("SELECT pg_advisory_lock(4242)")
        # Five statements at once on two connections: two run, three wait for a connection.
        calls = [asyncio.ensure_future(direct.execute(gate, write=False)) for _ in range(5)]
        await _until_waiting(postgres_database, lambda n: n >= 2)
        assert await _waiting(postgres_database) == 2
        for call in calls:  # interrupted mid-statement: their connections are closed
            call.cancel()
        await asyncio.gather(*calls, return_exceptions=True)
        await holder.close()  # the waiting statements get the lock, end, and find no client
        await _until_waiting(postgres_database, lambda n: n == 0)
        # The next calls open fresh connections and work.
        assert await direct.fetchval("SELECT 1", write=False) == 1
        assert await direct.fetchval("SELECT 2") == 2
    finally:
        await direct.close()
