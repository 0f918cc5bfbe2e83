"""Conformance: executions, their events and checkpoints, on every backend."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

import pytest

from flowrunner.errors import Conflict, NotFound
from flowrunner.storage import Account, Execution, NewCheckpoint, NewDelivery, NewEvent, Store
from flowrunner.storage.records import DETACHED_KEY_PREFIX, appended
from tests.storage.backends import FakeClock


async def _run(store: Store, account: Account, **kw: object) -> str:
    execution = await store.executions.create(
        account.id,
        flow_id="f1",
        flow_version=1,
        input={"x": 1},
        **kw,  # type: ignore[arg-type]
    )
    return execution.id


async def test_created_execution_reads_back(store: Store, account: Account) -> None:
    made = await store.executions.create(
        account.id, flow_id="f1", flow_version=3, input={"n": [1, 2]}, idempotency_key="k1"
    )
    assert made.status == "queued"
    assert made.last_event_seq == 0
    assert await store.executions.get(account.id, made.id) == made
    assert await store.executions.get_by_idempotency_key(account.id, "k1") == made


async def test_created_without_a_version_pins_the_flows_current_one(
    store: Store, account: Account, other: Account
) -> None:
    flow = await store.flows.create(account.id, name="pinned")
    with pytest.raises(NotFound):  # no version yet
        await store.executions.create(account.id, flow_id=flow.id, flow_version=None)
    for _ in range(2):
        await store.flows.add_version(account.id, flow.id, yaml="nodes: {}")
    made = await store.executions.create(
        account.id, flow_id=flow.id, flow_version=None, input={"n": 1}, idempotency_key="p"
    )
    assert made.flow_version == 2
    assert await store.executions.get(account.id, made.id) == made
    with pytest.raises(Conflict):  # the key is still checked
        await store.executions.create(
            account.id, flow_id=flow.id, flow_version=None, idempotency_key="p"
        )
    with pytest.raises(NotFound):  # another account's flow
        await store.executions.create(other.id, flow_id=flow.id, flow_version=None)
    with pytest.raises(NotFound):
        await store.executions.create(account.id, flow_id="missing", flow_version=None)
    await store.flows.delete(account.id, flow.id)
    with pytest.raises(NotFound):
        await store.executions.create(account.id, flow_id=flow.id, flow_version=None)


async def test_idempotency_key_is_unique_per_account_only(
    store: Store, account: Account, other: Account
) -> None:
    await store.executions.create(account.id, flow_id="f", flow_version=1, idempotency_key="k")
    with pytest.raises(Conflict):
        await store.executions.create(account.id, flow_id="f", flow_version=1, idempotency_key="k")
    # The same key in another account is another request.
    await store.executions.create(other.id, flow_id="f", flow_version=1, idempotency_key="k")
    # And no key at all never collides.
    await store.executions.create(account.id, flow_id="f", flow_version=1)
    await store.executions.create(account.id, flow_id="f", flow_version=1)


async def test_update_sets_fields_and_keeps_the_rest(
    store: Store, account: Account, clock: FakeClock
) -> None:
    run_id = await _run(store, account)
    started = clock.now
    running = await store.executions.update(
        account.id, run_id, status="running", started_at=started, current_node="fetch"
    )
    assert running.status == "running"
    assert running.started_at == started
    done = await store.executions.update(
        account.id, run_id, status="completed", output={"ok": True}, progress=1.0
    )
    assert done.output == {"ok": True}
    assert done.current_node == "fetch"
    assert done.progress == 1.0
    assert await store.executions.get(account.id, run_id) == done


async def test_expected_status_makes_transitions_compare_and_set(
    store: Store, account: Account
) -> None:
    run_id = await _run(store, account)
    await store.executions.update(account.id, run_id, expected_status=["queued"], status="running")
    with pytest.raises(Conflict):
        await store.executions.update(
            account.id, run_id, expected_status=["queued"], status="running"
        )
    failed = await store.executions.update(
        account.id, run_id, expected_status=["running"], status="failed",
        error={"code": "node_failed", "message": "boom"},
    )  # fmt: skip
    assert failed.error == {"code": "node_failed", "message": "boom"}


async def test_executions_are_invisible_to_other_accounts(
    store: Store, account: Account, other: Account
) -> None:
    run_id = await _run(store, account, idempotency_key="k")
    for call in (
        store.executions.get(other.id, run_id),
        store.executions.get_by_idempotency_key(other.id, "k"),
        store.executions.update(other.id, run_id, status="canceled"),
        store.executions.append_events(other.id, run_id, [NewEvent("x")]),
        store.executions.list_events(other.id, run_id),
        store.executions.get_checkpoint(other.id, run_id),
        store.executions.save_checkpoint(other.id, run_id, shared={}, next_node=None, results={}),
        store.executions.acquire_lease(other.id, run_id, owner="w", ttl=timedelta(seconds=5)),
    ):
        with pytest.raises(NotFound):
            await call
    assert (await store.executions.list(other.id)).items == []


async def test_list_filters_by_status_flow_and_time(
    store: Store, account: Account, clock: FakeClock
) -> None:
    a = await store.executions.create(account.id, flow_id="f1", flow_version=1)
    clock.advance(timedelta(minutes=5))
    middle = clock.now
    b = await store.executions.create(account.id, flow_id="f2", flow_version=1)
    c = await store.executions.create(account.id, flow_id="f1", flow_version=2)
    await store.executions.update(account.id, b.id, status="failed")

    async def ids(**filters: object) -> list[str]:
        page = await store.executions.list(account.id, **filters)  # type: ignore[arg-type]
        return [e.id for e in page.items]

    assert await ids() == [c.id, b.id, a.id]
    assert await ids(status=["failed"]) == [b.id]
    assert await ids(status=["queued", "failed"]) == [c.id, b.id, a.id]
    assert await ids(flow_id="f1") == [c.id, a.id]
    assert await ids(created_after=middle) == [c.id, b.id]
    assert await ids(created_before=middle, flow_id="f1") == [a.id]


async def test_list_pages_are_disjoint_and_complete(store: Store, account: Account) -> None:
    made = [await _run(store, account) for _ in range(11)]
    seen: list[str] = []
    cursor = None
    while True:
        page = await store.executions.list(account.id, limit=4, cursor=cursor)
        seen += [e.id for e in page.items]
        if (cursor := page.next_cursor) is None:
            break
    assert seen == list(reversed(made))


async def test_events_are_numbered_from_one_in_append_order(store: Store, account: Account) -> None:
    run_id = await _run(store, account)
    first = await store.executions.append_events(
        account.id, run_id, [NewEvent("started"), NewEvent("node", {"id": "a"})]
    )
    second = await store.executions.append_events(account.id, run_id, [NewEvent("done")])
    assert [e.seq for e in first + second] == [1, 2, 3]
    events = await store.executions.list_events(account.id, run_id)
    assert [(e.seq, e.type) for e in events] == [(1, "started"), (2, "node"), (3, "done")]
    assert events[1].data == {"id": "a"}
    tail = await store.executions.list_events(account.id, run_id, after_seq=1, limit=1)
    assert [e.seq for e in tail] == [2]
    assert (await store.executions.get(account.id, run_id)).last_event_seq == 3


async def test_concurrent_writers_get_gap_free_unique_sequence(
    store: Store, account: Account
) -> None:
    run_id = await _run(store, account)

    async def writer(w: int) -> None:
        for i in range(50):
            await store.executions.append_events(
                account.id, run_id, [NewEvent("tick", {"writer": w, "i": i})]
            )

    await asyncio.gather(*(writer(w) for w in range(10)))
    events = await store.executions.list_events(account.id, run_id, limit=1000)
    assert [e.seq for e in events] == list(range(1, 501))
    # Each writer's own events keep their order.
    for w in range(10):
        mine = [e.data["i"] for e in events if e.data["writer"] == w]
        assert mine == list(range(50))


async def test_concurrent_batches_stay_contiguous(store: Store, account: Account) -> None:
    run_id = await _run(store, account)
    batches = await asyncio.gather(
        *(
            store.executions.append_events(
                account.id, run_id, [NewEvent("b", {"batch": b}) for _ in range(20)]
            )
            for b in range(10)
        )
    )
    for batch in batches:
        seqs = [e.seq for e in batch]
        assert seqs == list(range(seqs[0], seqs[0] + 20))
    all_seqs = sorted(e.seq for batch in batches for e in batch)
    assert all_seqs == list(range(1, 201))


async def test_a_final_status_and_its_events_are_stored_in_one_write(
    store: Store, account: Account, clock: FakeClock
) -> None:
    runs = store.executions
    run_id = await _run(store, account)
    hook = await store.webhooks.create_endpoint(
        account.id, url="https://example.test/h", events=["*"], secret="s"
    )
    await runs.update(account.id, run_id, status="running")
    await runs.append_events(account.id, run_id, [NewEvent("status", {"status": "running"})])
    await runs.save_checkpoint(account.id, run_id, shared={}, next_node="b", results={})
    at = clock.now - timedelta(seconds=1)
    last = [
        NewEvent("node", {"node_id": "b", "state": "finished"}, at),
        NewEvent("complete", {"status": "completed", "output": [1]}, at),
    ]
    done = await runs.update(
        account.id,
        run_id,
        expected_status=["running"],
        status="completed",
        output=[1],
        release_lease=True,
        drop_checkpoint=True,
        outbox=[NewDelivery(hook.id, "execution.completed", {"id": run_id})],
        events=last,
    )
    assert done.status == "completed"
    assert done.last_event_seq == 3
    assert appended(done, last) == (await runs.list_events(account.id, run_id))[1:]
    events = await runs.list_events(account.id, run_id)
    assert [(e.seq, e.type) for e in events] == [(1, "status"), (2, "node"), (3, "complete")]
    assert events[2].data == {"status": "completed", "output": [1]}
    assert [e.created_at for e in events[1:]] == [at, at]
    assert await runs.get(account.id, run_id) == done
    assert await runs.get_checkpoint(account.id, run_id) is None
    deliveries = (await store.webhooks.list_deliveries(account.id)).items
    assert [d.event_type for d in deliveries] == ["execution.completed"]
    # A racing writer that finds the run ended stores neither its status nor its events.
    with pytest.raises(Conflict):
        await runs.update(
            account.id,
            run_id,
            expected_status=["queued", "running"],
            status="canceled",
            events=[NewEvent("status", {"status": "canceled"})],
        )
    assert (await runs.get(account.id, run_id)).status == "completed"
    assert len(await runs.list_events(account.id, run_id)) == 3
    assert (await runs.get(account.id, run_id)).last_event_seq == 3


async def test_final_events_stay_gap_free_among_concurrent_appends(
    store: Store, account: Account
) -> None:
    runs = store.executions
    run_id = await _run(store, account, status="running")
    last = [NewEvent("node", {"i": i}) for i in range(3)] + [NewEvent("complete")]

    async def appender(w: int) -> None:
        for i in range(10):
            await runs.append_events(account.id, run_id, [NewEvent("tick", {"w": w, "i": i})])

    async def finisher() -> Execution:
        await asyncio.sleep(0)
        return await runs.update(
            account.id, run_id, expected_status=["running"], status="completed", events=last
        )

    _, done = await asyncio.gather(asyncio.gather(*(appender(w) for w in range(3))), finisher())
    events = await runs.list_events(account.id, run_id, limit=1000)
    assert [e.seq for e in events] == list(range(1, 35))
    mine = appended(done, last)
    assert [e.seq for e in mine] == list(range(mine[0].seq, done.last_event_seq + 1))
    assert [(e.type, e.data) for e in events[mine[0].seq - 1 : mine[-1].seq]] == [
        (e.type, e.data) for e in last
    ]


async def test_checkpoint_is_upserted_one_per_execution(store: Store, account: Account) -> None:
    run_id = await _run(store, account)
    assert await store.executions.get_checkpoint(account.id, run_id) is None
    await store.executions.save_checkpoint(
        account.id, run_id, shared={"n": 1}, next_node="b", results={"a": [1]}
    )
    first = await store.executions.get_checkpoint(account.id, run_id)
    assert first is not None
    assert first.resume == {}  # none given
    saved = await store.executions.save_checkpoint(
        account.id,
        run_id,
        shared={"n": 2},
        next_node=None,
        results={"a": [1], "b": "x"},
        resume={"last_node": "b", "steps": 2},
    )
    got = await store.executions.get_checkpoint(account.id, run_id)
    assert got == saved
    assert got is not None
    assert got.shared == {"n": 2}
    assert got.next_node is None
    assert got.resume == {"last_node": "b", "steps": 2}


async def test_stored_json_is_not_aliased_to_callers_objects(
    store: Store, account: Account
) -> None:
    data = {"items": [1, 2]}
    run_id = await _run(store, account)
    await store.executions.append_events(account.id, run_id, [NewEvent("e", data)])
    data["items"].append(3)
    (event,) = await store.executions.list_events(account.id, run_id)
    assert event.data == {"items": [1, 2]}


async def test_record_step_appends_events_and_saves_checkpoint_together(
    store: Store, account: Account
) -> None:
    run_id = await _run(store, account)
    resume = {"last_node": "a", "steps": 1, "error": None}
    step = NewCheckpoint(shared={"n": 1}, next_node="b", results={"a": [1]}, resume=resume)
    first = await store.executions.record_step(
        account.id, run_id, [NewEvent("node", {"id": "a"}), NewEvent("log")], checkpoint=step
    )
    second = await store.executions.record_step(account.id, run_id, [NewEvent("done")])
    assert [(e.seq, e.type) for e in first + second] == [(1, "node"), (2, "log"), (3, "done")]
    stored = await store.executions.list_events(account.id, run_id)
    assert [(e.seq, e.type, e.data) for e in stored] == [
        (1, "node", {"id": "a"}),
        (2, "log", {}),
        (3, "done", {}),
    ]
    got = await store.executions.get_checkpoint(account.id, run_id)
    assert got is not None
    assert (got.shared, got.next_node, dict(got.results)) == ({"n": 1}, "b", {"a": [1]})
    assert got.resume == resume
    assert (await store.executions.get(account.id, run_id)).last_event_seq == 3


async def test_record_step_says_where_the_run_is_and_none_leaves_it(
    store: Store, account: Account
) -> None:
    run_id = await _run(store, account)
    runs = store.executions
    await runs.record_step(account.id, run_id, [NewEvent("node")], current_node="a")
    at_a = await runs.get(account.id, run_id)
    assert (at_a.progress, at_a.current_node, at_a.last_event_seq) == (0.0, "a", 1)
    step = NewCheckpoint(shared={}, next_node="b", results={"a": 1})
    await runs.record_step(
        account.id, run_id, [NewEvent("node")], checkpoint=step, progress=0.5, current_node="b"
    )
    at_b = await runs.get(account.id, run_id)
    assert (at_b.progress, at_b.current_node, at_b.last_event_seq) == (0.5, "b", 2)
    # A step that says nothing of where the run is (a log line) leaves it; so does an
    # empty step that only says where it is.
    await runs.record_step(account.id, run_id, [NewEvent("log")])
    await runs.record_step(account.id, run_id, [], progress=0.75)
    later = await runs.get(account.id, run_id)
    assert (later.progress, later.current_node, later.last_event_seq) == (0.75, "b", 3)


async def test_events_keep_the_time_they_happened_else_get_the_store_clock(
    store: Store, account: Account, clock: FakeClock
) -> None:
    run_id = await _run(store, account)
    started = clock.now - timedelta(seconds=3)
    finished = clock.now - timedelta(seconds=1, microseconds=250)
    step = NewCheckpoint(shared={}, next_node="b", results={})
    events = [NewEvent("node", {"s": 1}, started), NewEvent("node", {"s": 2}, finished)]
    written = await store.executions.record_step(account.id, run_id, events, checkpoint=step)
    written += await store.executions.append_events(account.id, run_id, [NewEvent("done")])
    stored = await store.executions.list_events(account.id, run_id)
    for got in (written, stored):
        assert [e.created_at for e in got] == [started, finished, clock.now]


async def test_record_step_of_a_missing_execution_writes_nothing(
    store: Store, account: Account
) -> None:
    step = NewCheckpoint(shared={}, next_node="b", results={})
    with pytest.raises(NotFound):
        await store.executions.record_step(account.id, "0" * 32, [NewEvent("x")], checkpoint=step)
    other = await store.accounts.create("eve", "hash")
    run_id = await _run(store, account)
    with pytest.raises(NotFound):  # another account's run is a missing one
        await store.executions.record_step(other.id, run_id, [NewEvent("x")], checkpoint=step)
    assert await store.executions.list_events(account.id, run_id) == []
    assert await store.executions.get_checkpoint(account.id, run_id) is None


async def test_concurrent_steps_of_many_runs_stay_gap_free(store: Store, account: Account) -> None:
    runs = [await _run(store, account) for _ in range(8)]

    async def steps(run_id: str) -> None:
        for i in range(10):
            point = NewCheckpoint(shared={"i": i}, next_node=f"n{i + 1}", results={"i": i})
            await store.executions.record_step(
                account.id, run_id, [NewEvent("a", {"i": i}), NewEvent("b")], checkpoint=point
            )

    await asyncio.gather(*(steps(r) for r in runs))
    for run_id in runs:
        events = await store.executions.list_events(account.id, run_id)
        assert [e.seq for e in events] == list(range(1, 21))
        assert [e.data.get("i") for e in events[::2]] == list(range(10))
        got = await store.executions.get_checkpoint(account.id, run_id)
        assert got is not None
        assert got.next_node == "n10"
        assert got.shared == {"i": 9}


# --- any JSON value round-trips, on every backend --------------------------------------------

# Scalars SQLite would turn into numbers by column affinity, text that looks like a number,
# and Unicode the drivers choke on: lone surrogates (stored escaped, read back as they were),
# NUL characters and characters outside the Basic Multilingual Plane.
ANY_JSON = [
    42,
    -7,
    0,
    2**63 - 1,
    1.5,
    -0.0,
    1.0,
    0.30000000000000004,
    1e300,
    True,
    False,
    "42",
    "1.5",
    "",
    " 42 ",
    "\ud800",
    "a\udfffb",
    "nul\x00here",
    "\U0001f600 astral \U00010348",
    {"k\x00": ["\ud800", "\U0001f600", 3, 2.5, None, True]},
    [],
    {},
]


def _same(got: object, want: object) -> bool:
    """Equal, and of the same JSON type all the way down (1 vs 1.0 vs True, -0.0 vs 0.0)."""
    if isinstance(want, dict):
        return (
            isinstance(got, dict)
            and got.keys() == want.keys()
            and all(_same(got[k], want[k]) for k in want)
        )
    if isinstance(want, list):
        return (
            isinstance(got, list)
            and len(got) == len(want)
            and all(_same(g, w) for g, w in zip(got, want, strict=True))
        )
    if isinstance(want, float) and isinstance(got, float):
        return repr(got) == repr(want)
    return type(got) is type(want) and got == want


@pytest.mark.parametrize("value", ANY_JSON, ids=repr)
async def test_any_json_value_round_trips_as_input_output_event_and_checkpoint(
    store: Store, account: Account, value: object
) -> None:
    runs = store.executions
    made = await runs.create(account.id, flow_id="f", flow_version=1, input=value)
    assert _same((await runs.get(account.id, made.id)).input, value)
    step = NewCheckpoint(shared=value, next_node="b", results={"a": value})
    await runs.record_step(account.id, made.id, [NewEvent("node", {"v": value})], checkpoint=step)
    saved = await runs.get_checkpoint(account.id, made.id)
    assert saved is not None
    assert _same(saved.shared, value)
    assert _same(saved.results["a"], value)
    (event,) = await runs.list_events(account.id, made.id)
    assert _same(event.data["v"], value)
    await runs.save_checkpoint(account.id, made.id, shared=value, next_node="c", results={})
    again = await runs.get_checkpoint(account.id, made.id)
    assert again is not None
    assert _same(again.shared, value)
    done = await runs.update(account.id, made.id, status="completed", output=value)
    assert _same(done.output, value)
    assert _same((await runs.get(account.id, made.id)).output, value)
    listed = await runs.list(account.id)
    assert _same(listed.items[0].output, value)


async def test_a_checkpoint_is_dropped_only_by_an_update_that_asks_for_it(
    store: Store, account: Account
) -> None:
    run_id = await _run(store, account)
    await store.executions.update(account.id, run_id, status="running")
    step = NewCheckpoint(shared={"n": 1}, next_node="b", results={"a": [1]})
    await store.executions.record_step(account.id, run_id, [NewEvent("node")], checkpoint=step)
    await store.executions.update(account.id, run_id, status="completed")
    assert await store.executions.get_checkpoint(account.id, run_id) is not None  # not asked
    await store.executions.update(account.id, run_id, drop_checkpoint=True)
    assert await store.executions.get_checkpoint(account.id, run_id) is None
    assert [e.type for e in await store.executions.list_events(account.id, run_id)] == ["node"]


async def test_a_child_execution_names_its_parent_and_is_listed_under_it(
    store: Store, account: Account, other: Account
) -> None:
    parent = await store.executions.create(account.id, flow_id="p", flow_version=1)
    first = await store.executions.create(
        account.id, flow_id="c", flow_version=2, parent_id=parent.id, idempotency_key="sub:1"
    )
    second = await store.executions.create(
        account.id, flow_id="c", flow_version=2, parent_id=parent.id
    )
    await store.executions.create(account.id, flow_id="c", flow_version=2)  # not a child

    assert parent.parent_id is None
    assert (await store.executions.get(account.id, first.id)).parent_id == parent.id
    assert (await store.executions.get_by_idempotency_key(account.id, "sub:1")) == first
    updated = await store.executions.update(account.id, first.id, status="running")
    assert updated.parent_id == parent.id  # other writes keep the link
    children = await store.executions.list(account.id, parent_id=parent.id)
    assert [e.id for e in children.items] == [second.id, first.id]
    everything = await store.executions.list(account.id)
    assert len(everything.items) == 4  # children are executions like any other
    assert (await store.executions.list(other.id, parent_id=parent.id)).items == []


async def test_crash_recovery_never_claims_a_child_run(
    store: Store, account: Account, clock: FakeClock
) -> None:
    ttl = timedelta(seconds=5)
    parent = await store.executions.create(account.id, flow_id="p", flow_version=1)
    child = await store.executions.create(
        account.id, flow_id="c", flow_version=1, parent_id=parent.id
    )
    for run in (parent, child):
        await store.executions.acquire_lease(account.id, run.id, owner="dead", ttl=ttl)
        await store.executions.update(account.id, run.id, status="running")
    clock.advance(ttl * 2)
    claimed = await store.executions.admin_claim_expired_leases(owner="rescuer", ttl=ttl)
    assert [e.id for e in claimed] == [parent.id]  # the parent resumes its child itself
    # Its expired lease is still free for the parent's process to take.
    taken = await store.executions.acquire_lease(account.id, child.id, owner="rescuer", ttl=ttl)
    assert taken.lease_owner == "rescuer"


async def test_crash_recovery_claims_an_on_failure_child_like_a_top_level_run(
    store: Store, account: Account, clock: FakeClock
) -> None:
    ttl = timedelta(seconds=5)
    failed = await store.executions.create(account.id, flow_id="p", flow_version=1)
    await store.executions.update(account.id, failed.id, status="failed")
    handler = await store.executions.create(
        account.id, flow_id="h", flow_version=1, parent_id=failed.id,
        idempotency_key=f"{DETACHED_KEY_PREFIX}{failed.id}",
    )  # fmt: skip
    sub = await store.executions.create(
        account.id, flow_id="c", flow_version=1, parent_id=failed.id, idempotency_key="sub:x"
    )
    assert handler.detached
    assert failed.detached
    assert not sub.detached
    for run in (handler, sub):
        await store.executions.acquire_lease(account.id, run.id, owner="dead", ttl=ttl)
        await store.executions.update(account.id, run.id, status="running")
    clock.advance(ttl * 2)
    claimed = await store.executions.admin_claim_expired_leases(owner="rescuer", ttl=ttl)
    # Its parent has ended: nobody but recovery would resume it. The sub-flow's child waits
    # for its parent.
    assert [(e.id, e.parent_id) for e in claimed] == [(handler.id, failed.id)]


async def test_usage_is_stored_with_the_execution_and_none_leaves_it(
    store: Store, account: Account
) -> None:
    run_id = await _run(store, account)
    assert (await store.executions.get(account.id, run_id)).usage is None
    usage = {
        "calls": 2,
        "prompt_tokens": 30,
        "completion_tokens": 12,
        "total_tokens": 42,
        "nodes": {"ask": {"calls": 2, "prompt_tokens": 30, "completion_tokens": 12,
                          "total_tokens": 42}},
    }  # fmt: skip
    done = await store.executions.update(
        account.id, run_id, status="completed", usage=usage, release_lease=True
    )
    assert done.usage == usage
    assert (await store.executions.get(account.id, run_id)).usage == usage
    # Another update that does not name usage keeps it.
    again = await store.executions.update(account.id, run_id, output={"ok": True})
    assert again.usage == usage
    listed = await store.executions.list(account.id)
    assert [e.usage for e in listed.items] == [usage]


async def test_delete_takes_only_this_accounts_runs_in_the_given_statuses_with_their_data(
    store: Store, account: Account, other: Account
) -> None:
    runs = store.executions
    done = await _run(store, account, idempotency_key="done-key")
    await runs.update(account.id, done, status="completed", output={"ok": True})
    await runs.append_events(account.id, done, [NewEvent("status", {"status": "completed"})])
    await runs.save_checkpoint(account.id, done, shared={}, next_node=None, results={})
    running = await _run(store, account)
    await runs.update(account.id, running, status="running")
    theirs = await _run(store, other)
    await runs.update(other.id, theirs, status="completed")

    deleted = await runs.delete(
        account.id, [done, running, theirs, "missing", done], statuses=["completed", "failed"]
    )

    assert deleted == [done]
    with pytest.raises(NotFound):
        await runs.get(account.id, done)
    # A backend may say the run is missing instead of answering empty.
    with contextlib.suppress(NotFound):
        assert await runs.list_events(account.id, done) == []
    with contextlib.suppress(NotFound):
        assert await runs.get_checkpoint(account.id, done) is None
    assert (await runs.get(account.id, running)).status == "running"  # active: never deleted
    assert (await runs.get(other.id, theirs)).status == "completed"  # another account's
    # The idempotency key is free again, and the run's events went with it.
    again = await _run(store, account, idempotency_key="done-key")
    assert await runs.list_events(account.id, again) == []
    assert [e.id for e in (await runs.list(account.id)).items] == [again, running]
