"""The execution service: start, pin, wait, cancel, retry/resume, logs and following."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest

from flowrunner.errors import Conflict, InvalidInput, NotFound
from flowrunner.executions import events as ev
from flowrunner.storage import Execution, ExecutionEvent
from tests.conftest import HANG_GUARD
from tests.executions.conftest import FAILING, GATED, SLOW, STEPS, Harness, until_node


async def test_start_runs_the_current_version_and_wait_returns_the_result(
    harness: Harness,
) -> None:
    flow_id = await harness.flow(STEPS)
    started = await harness.service.start(harness.account.id, flow_id, {"name": "Ada"})
    assert started.created
    assert started.execution.status == "queued"
    done = await harness.service.wait(harness.account.id, started.execution.id, within=HANG_GUARD)
    assert done.status == "completed"
    assert done.output == {"done": True}


async def test_start_pins_the_current_version_in_the_create_without_reading_the_flow(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    flow_id = await harness.flow(STEPS)
    empty = await harness.store.flows.create(harness.account.id, name="no version yet")

    async def no_read(*args: Any, **kw: Any) -> Any:
        raise AssertionError("the flow was read")

    monkeypatch.setattr(harness.store.flows, "get", no_read)
    started = await harness.service.start(harness.account.id, flow_id, {"name": "Ada"})
    assert started.execution.flow_version == 1
    monkeypatch.undo()  # a start that fails reads the flow to say why
    with pytest.raises(InvalidInput):
        await harness.service.start(harness.account.id, empty.id, {})
    with pytest.raises(NotFound):
        await harness.service.start(harness.account.id, "missing", {})
    done = await harness.service.wait(harness.account.id, started.execution.id, within=HANG_GUARD)
    assert done.status == "completed"


async def test_wait_for_a_run_this_process_ran_answers_from_its_final_write_without_a_read(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    flow_id = await harness.flow(GATED)
    started = await harness.service.start(harness.account.id, flow_id, {})
    reads: list[str] = []
    get = harness.store.executions.get

    async def counting(account_id: str, execution_id: str) -> Execution:
        reads.append(execution_id)
        return await get(account_id, execution_id)

    monkeypatch.setattr(harness.store.executions, "get", counting)
    waiting = asyncio.create_task(
        harness.service.wait(harness.account.id, started.execution.id, within=HANG_GUARD)
    )
    await harness.gate.until_arrived(1)
    harness.gate.open()
    done = await waiting
    assert done.status == "completed"
    assert reads == []  # the executor's task handed over the run its final write returned
    assert done == await get(harness.account.id, done.id)


async def test_a_run_is_created_holding_its_executors_lease_and_not_leased_again(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    acquired: list[str] = []
    acquire = harness.store.executions.acquire_lease

    async def counting(account_id: str, execution_id: str, **kw: Any) -> Execution:
        acquired.append(execution_id)
        return await acquire(account_id, execution_id, **kw)

    monkeypatch.setattr(harness.store.executions, "acquire_lease", counting)
    flow_id = await harness.flow(STEPS)
    started = await harness.service.start(harness.account.id, flow_id, {"name": "Ada"})
    assert started.execution.lease_owner == harness.executor.owner
    done = await harness.service.wait(harness.account.id, started.execution.id, within=HANG_GUARD)
    assert done.status == "completed"
    assert done.lease_owner is None  # its final status let the lease go
    assert acquired == []
    # A run the executor does not hold the lease of is still leased on submit.
    other = await harness.store.executions.create(
        harness.account.id, flow_id=flow_id, flow_version=1, input={"name": "Bo"}
    )
    assert await harness.executor.submit(other)
    assert acquired == [other.id]
    ended = await harness.service.wait(harness.account.id, other.id, within=HANG_GUARD)
    assert ended.status == "completed"


async def test_a_run_keeps_the_version_it_started_with_when_the_flow_is_edited(
    harness: Harness,
) -> None:
    flow_id = await harness.flow(SLOW)
    started = await harness.service.start(harness.account.id, flow_id, {"nap": 0.3})
    await harness.store.flows.add_version(harness.account.id, flow_id, yaml=STEPS)
    done = await harness.service.wait(harness.account.id, started.execution.id, within=HANG_GUARD)
    assert done.flow_version == 1
    assert done.output == {"step": 3}
    pinned = await harness.service.start(harness.account.id, flow_id, {"nap": 0}, version=1)
    assert pinned.execution.flow_version == 1
    latest = await harness.service.start(harness.account.id, flow_id, {"name": "x"})
    assert latest.execution.flow_version == 2


async def test_the_same_idempotency_key_never_starts_a_second_run(harness: Harness) -> None:
    flow_id = await harness.flow(STEPS)
    first, second = await asyncio.gather(
        harness.service.start(harness.account.id, flow_id, {}, idempotency_key="k1"),
        harness.service.start(harness.account.id, flow_id, {}, idempotency_key="k1"),
    )
    assert first.execution.id == second.execution.id
    assert [first.created, second.created].count(True) == 1
    page = await harness.service.list(harness.account.id, flow_id=flow_id)
    assert len(page.items) == 1


@pytest.mark.parametrize("bad", [[1, 2], "text", 3, None, {"blob": "x" * 20_000}])
async def test_bad_input_is_rejected_and_starts_nothing(harness: Harness, bad: object) -> None:
    flow_id = await harness.flow(STEPS)
    with pytest.raises(InvalidInput):
        await harness.service.start(harness.account.id, flow_id, bad)
    assert (await harness.service.list(harness.account.id)).items == []


async def test_unknown_deleted_or_other_accounts_flows_and_versions_are_not_found(
    harness: Harness,
) -> None:
    flow_id = await harness.flow(STEPS)
    other = await harness.store.accounts.create("eve", "hash")
    with pytest.raises(NotFound):
        await harness.service.start(harness.account.id, "nope", {})
    with pytest.raises(NotFound):
        await harness.service.start(harness.account.id, flow_id, {}, version=9)
    with pytest.raises(NotFound):
        await harness.service.start(other.id, flow_id, {})
    await harness.store.flows.delete(harness.account.id, flow_id)
    with pytest.raises(NotFound):
        await harness.service.start(harness.account.id, flow_id, {})
    assert (await harness.service.list(harness.account.id)).items == []


async def test_cancel_of_a_finished_run_conflicts(harness: Harness) -> None:
    flow_id = await harness.flow(STEPS)
    started = await harness.service.start(harness.account.id, flow_id, {})
    await harness.service.wait(harness.account.id, started.execution.id, within=HANG_GUARD)
    with pytest.raises(Conflict):
        await harness.service.cancel(harness.account.id, started.execution.id)


async def test_cancel_stops_a_running_run(harness: Harness) -> None:
    flow_id = await harness.flow(SLOW)
    started = await harness.service.start(harness.account.id, flow_id, {"nap": 3600})
    await until_node(harness, started.execution.id, "nap", "started")
    view = await harness.service.get(harness.account.id, started.execution.id)
    assert view.current_node == "nap"
    assert 0 < view.progress < 1
    # A listing shows where the run is just as reading it does.
    (listed,) = (await harness.service.list(harness.account.id)).items
    assert (listed.current_node, listed.progress) == ("nap", view.progress)
    canceled = await harness.service.cancel(harness.account.id, started.execution.id)
    assert canceled.status == "canceled"
    assert canceled.current_node is None  # it runs nowhere any more
    assert canceled.progress == view.progress  # and keeps what it reached


async def test_cancel_of_a_run_no_process_holds_is_recorded_with_the_progress_it_reached(
    harness: Harness,
) -> None:
    runs, account = harness.store.executions, harness.account.id
    # As a process that died mid-run left it: running, leased, one node of two done.
    orphan = await runs.create(account, flow_id="f", flow_version=1)
    await runs.acquire_lease(account, orphan.id, owner="dead", ttl=timedelta(seconds=30))
    await runs.update(account, orphan.id, status="running")
    await runs.record_step(account, orphan.id, [], progress=0.5, current_node="b")
    canceled = await harness.service.cancel(account, orphan.id)
    assert (canceled.status, canceled.progress, canceled.current_node) == ("canceled", 0.5, None)
    assert canceled.lease_owner is None
    events = await runs.list_events(account, orphan.id)
    assert [e.data for e in events] == [{"status": "canceled"}]


async def test_retry_starts_a_new_run_and_resume_starts_at_the_failed_node(
    harness: Harness,
) -> None:
    flow_id = await harness.flow(FAILING)
    started = await harness.service.start(harness.account.id, flow_id, {"a": 1})
    failed = await harness.service.wait(harness.account.id, started.execution.id, within=HANG_GUARD)
    assert failed.status == "failed"
    retried = await harness.service.retry(harness.account.id, failed.id)
    assert retried.execution.input == {"a": 1}
    assert retried.execution.id != failed.id
    assert failed.progress == 0.5  # `ok` done, of two nodes
    resumed = await harness.service.retry(harness.account.id, failed.id, resume=True)
    again = await harness.service.wait(harness.account.id, resumed.execution.id, within=HANG_GUARD)
    assert again.status == "failed"
    # It started with the progress the failed run had reached, and failing again kept it.
    assert again.progress == 0.5
    events = await harness.store.executions.list_events(harness.account.id, again.id)
    assert events[0].data == {"status": "queued", "retry_of": failed.id, "resume_from": "boom"}
    started_nodes = [e.data["node_id"] for e in events if e.data.get("state") == "started"]
    assert started_nodes == ["boom"]


async def test_logs_filter_by_node_and_page_by_sequence(harness: Harness) -> None:
    flow_id = await harness.flow(
        """
metadata: {name: chatty}
nodes:
  a: {type: log, params: {message: one}, next: {default: b}}
  b: {type: log, params: {message: two, level: warning}, next: {default: c}}
  c: {type: log, params: {message: three}}
"""
    )
    started = await harness.service.start(harness.account.id, flow_id, {})
    await harness.service.wait(harness.account.id, started.execution.id, within=HANG_GUARD)
    logs, cursor = await harness.service.logs(harness.account.id, started.execution.id, limit=2)
    assert [e.data["message"] for e in logs] == ["one", "two"]
    assert cursor is not None
    rest, end = await harness.service.logs(
        harness.account.id, started.execution.id, after_seq=cursor
    )
    assert [e.data["message"] for e in rest] == ["three"]
    assert end is None
    warned, _ = await harness.service.logs(
        harness.account.id, started.execution.id, level="warning"
    )
    assert [e.data["node_id"] for e in warned] == ["b"]
    by_node, _ = await harness.service.logs(harness.account.id, started.execution.id, node_id="c")
    assert [e.data["message"] for e in by_node] == ["three"]


async def _collect(stream: object) -> list[ExecutionEvent]:
    return [event async for event in stream]  # type: ignore[attr-defined]


async def test_following_replays_then_continues_live_without_gap_or_duplicate(
    harness: Harness,
) -> None:
    flow_id = await harness.flow(GATED)
    started = await harness.service.start(harness.account.id, flow_id, {})
    run_id = started.execution.id
    # Mid-run: some events are history, the rest will be live once the gate opens.
    await harness.gate.until_arrived(1)
    await until_node(harness, run_id, "nap", "started")
    seen_before = await harness.store.executions.list_events(harness.account.id, run_id)
    assert len(seen_before) > 2
    stream = await harness.service.follow(harness.account.id, run_id, after_seq=2)
    harness.gate.open()
    events = await asyncio.wait_for(_collect(stream), HANG_GUARD)
    assert len(events) > len(seen_before) - 2  # what was history, and then live ones
    seqs = [e.seq for e in events]
    assert seqs == list(range(3, seqs[-1] + 1))
    assert events[-1].type == ev.COMPLETE
    stored = await harness.store.executions.list_events(harness.account.id, run_id)
    assert seqs[-1] == stored[-1].seq


async def test_following_a_finished_run_replays_it_and_ends(harness: Harness) -> None:
    flow_id = await harness.flow(STEPS)
    started = await harness.service.start(harness.account.id, flow_id, {})
    await harness.service.wait(harness.account.id, started.execution.id, within=HANG_GUARD)
    stream = await harness.service.follow(harness.account.id, started.execution.id)
    events = await asyncio.wait_for(_collect(stream), HANG_GUARD)
    assert events[0].seq == 1
    assert events[-1].type == ev.COMPLETE


async def test_another_account_cannot_follow_a_run_or_a_flow(harness: Harness) -> None:
    flow_id = await harness.flow(STEPS)
    started = await harness.service.start(harness.account.id, flow_id, {})
    other = await harness.store.accounts.create("eve", "hash")
    with pytest.raises(NotFound):
        await harness.service.follow(other.id, started.execution.id)
    with pytest.raises(NotFound):
        await harness.service.follow_flow(other.id, flow_id)


async def test_following_a_flow_sees_every_new_run_of_it(harness: Harness) -> None:
    flow_id = await harness.flow(STEPS)
    stream = await harness.service.follow_flow(harness.account.id, flow_id)
    runs = [await harness.service.start(harness.account.id, flow_id, {}) for _ in range(2)]
    completed: set[str] = set()
    async with asyncio.timeout(HANG_GUARD):
        async for event in stream:
            if event.type == ev.COMPLETE:
                completed.add(event.execution_id)
            if len(completed) == 2:
                break
    assert completed == {r.execution.id for r in runs}


async def test_a_flow_subscription_with_a_cursor_replays_what_it_missed_then_goes_live(
    harness: Harness,
) -> None:
    flow_id = await harness.flow(STEPS)
    seen = await harness.service.start(harness.account.id, flow_id, {})
    await harness.service.wait(harness.account.id, seen.execution.id, within=HANG_GUARD)
    # The client had this run's first two events, then lost its connection at ``since``.
    since = (await harness.store.executions.get(harness.account.id, seen.execution.id)).created_at
    missed = await harness.service.start(harness.account.id, flow_id, {})
    await harness.service.wait(harness.account.id, missed.execution.id, within=HANG_GUARD)
    other = await harness.flow(STEPS)  # another flow's runs are not replayed
    await harness.service.start(harness.account.id, other, {})
    stream = await harness.service.follow_flow(
        harness.account.id, flow_id, since=since, after={seen.execution.id: 2}
    )
    live = await harness.service.start(harness.account.id, flow_id, {})
    got: dict[str, list[int]] = {}
    async with asyncio.timeout(HANG_GUARD):
        async for event in stream:
            got.setdefault(event.execution_id, []).append(event.seq)
            if event.execution_id == live.execution.id and event.type == ev.COMPLETE:
                break
    stored = {
        run.execution.id: [
            e.seq
            for e in await harness.store.executions.list_events(
                harness.account.id, run.execution.id
            )
        ]
        for run in (seen, missed, live)
    }
    assert got[seen.execution.id] == stored[seen.execution.id][2:]
    assert got[missed.execution.id] == stored[missed.execution.id]
    assert got[live.execution.id] == stored[live.execution.id]  # replayed or live, once each
    assert set(got) == {seen.execution.id, missed.execution.id, live.execution.id}


async def test_wait_shorter_than_a_local_run_returns_it_unfinished_and_leaves_it_running(
    harness: Harness,
) -> None:
    flow_id = await harness.flow(GATED)
    started = await harness.service.start(harness.account.id, flow_id, {})
    early = await harness.service.wait(harness.account.id, started.execution.id, within=0.05)
    assert early.status in ("queued", "running")
    harness.gate.open()  # the run could not end before this
    done = await harness.service.wait(harness.account.id, started.execution.id, within=HANG_GUARD)
    assert done.status == "completed"
    assert (
        done.last_event_seq
        == (await harness.store.executions.get(harness.account.id, done.id)).last_event_seq
    )
