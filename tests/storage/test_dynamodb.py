"""DynamoDB-specific behaviour (the shared contract runs in the conformance suite): the table
and its indexes, prefix isolation, settings, error translation, and the paths the contract
tests do not reach (several processes appending, filters across DynamoDB pages, big items)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from flowrunner.config import Settings
from flowrunner.errors import StorageError, StorageUnavailable
from flowrunner.storage import InvalidCursor, NewEvent, create_store, open_store
from flowrunner.storage.dynamodb import DynamoStore, paging
from flowrunner.storage.records import appended
from tests.dynamodb_server import ENDPOINT_ENV, free_port
from tests.storage.backends import FakeClock
from tests.storage.dynamodb_backend import aws_session, unique_prefix

pytestmark = pytest.mark.dynamodb


def _store(endpoint: str, clock: FakeClock, prefix: str | None = None, **kw: object) -> DynamoStore:
    return DynamoStore(
        endpoint=endpoint,
        table_prefix=prefix or unique_prefix(),
        clock=clock,
        session=aws_session(),
        **kw,  # type: ignore[arg-type]
    )


@pytest.fixture
async def dynamo(dynamodb_endpoint: str, clock: FakeClock) -> AsyncIterator[DynamoStore]:
    store = _store(dynamodb_endpoint, clock)
    await store.connect()
    yield store
    await store.drop_table()
    await store.close()


async def test_connect_creates_the_table_with_its_indexes_and_ttl(dynamo: DynamoStore) -> None:
    client = dynamo.table.client
    table = (await client.describe_table(TableName=dynamo.table.name))["Table"]
    assert table["TableStatus"] == "ACTIVE"
    assert dynamo.table.name.endswith("-main")
    assert {i["IndexName"] for i in table["GlobalSecondaryIndexes"]} == {"gsi1", "gsi2", "gsi3"}
    ttl = await client.describe_time_to_live(TableName=dynamo.table.name)
    assert ttl["TimeToLiveDescription"]["AttributeName"] == "ttl"


async def test_connect_reuses_an_existing_table_and_keeps_its_data(
    dynamo: DynamoStore, dynamodb_endpoint: str, clock: FakeClock
) -> None:
    await dynamo.connect()  # idempotent
    account = await dynamo.accounts.create("ada", "h")
    prefix = dynamo.table.name.removesuffix("-main")
    again = _store(dynamodb_endpoint, clock, prefix, create_table=False)
    await again.connect()
    try:
        assert (await again.accounts.get_by_username("ada")).id == account.id
    finally:
        await again.close()


async def test_prefixes_isolate_deployments_on_one_server(
    dynamo: DynamoStore, dynamodb_endpoint: str, clock: FakeClock
) -> None:
    neighbour = _store(dynamodb_endpoint, clock)
    await neighbour.connect()
    try:
        mine = await dynamo.accounts.create("ada", "h1")
        theirs = await neighbour.accounts.create("ada", "h2")  # same username: no conflict
        assert (await dynamo.accounts.get_by_username("ada")).id == mine.id
        assert (await neighbour.accounts.get_by_username("ada")).id == theirs.id
        assert [a.id for a in (await neighbour.accounts.admin_list()).items] == [theirs.id]
    finally:
        await neighbour.drop_table()
        await neighbour.close()


def test_settings_and_env_choose_endpoint_region_and_prefix(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FLOWRUNNER_STORAGE", "dynamodb")
    monkeypatch.setenv("FLOWRUNNER_DYNAMODB_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setenv("FLOWRUNNER_DYNAMODB_REGION", "eu-west-1")
    monkeypatch.setenv("FLOWRUNNER_DYNAMODB_TABLE_PREFIX", "staging")
    store = create_store(Settings())
    assert isinstance(store, DynamoStore)
    assert (store.endpoint, store.region, store.table.name) == (
        "http://127.0.0.1:9",
        "eu-west-1",
        "staging-main",
    )


async def test_open_store_from_settings_connects_and_creates_the_table(
    dynamodb_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not os.environ.get(ENDPOINT_ENV):  # moto takes any credentials; AWS uses the chain
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    prefix = unique_prefix()
    settings = Settings(
        storage="dynamodb", dynamodb_endpoint=dynamodb_endpoint, dynamodb_table_prefix=prefix
    )
    store = await open_store(settings)
    assert isinstance(store, DynamoStore)
    try:
        account = await store.accounts.create("ada", "h")
        assert (await store.accounts.get(account.id)).username == "ada"
    finally:
        await store.drop_table()
        await store.close()


async def test_unreachable_server_is_storage_unavailable(clock: FakeClock) -> None:
    store = _store(f"http://127.0.0.1:{free_port()}", clock)
    with pytest.raises(StorageUnavailable):
        await store.connect()


async def test_missing_table_without_create_is_storage_unavailable(
    dynamodb_endpoint: str, clock: FakeClock
) -> None:
    store = _store(dynamodb_endpoint, clock, create_table=False)
    with pytest.raises(StorageUnavailable):
        await store.connect()


async def test_table_dropped_under_a_running_store_is_storage_unavailable(
    dynamodb_endpoint: str, clock: FakeClock
) -> None:
    store = _store(dynamodb_endpoint, clock)
    await store.connect()
    await store.drop_table()
    try:
        with pytest.raises(StorageUnavailable):
            await store.accounts.get("nobody")
    finally:
        await store.close()


async def test_unconnected_store_says_so(clock: FakeClock) -> None:
    with pytest.raises(StorageUnavailable, match="not connected"):
        await _store("http://127.0.0.1:9", clock).accounts.get("x")


async def test_an_item_over_the_size_limit_is_a_storage_error(dynamo: DynamoStore) -> None:
    account = await dynamo.accounts.create("ada", "h")
    flow = await dynamo.flows.create(account.id, name="big")
    with pytest.raises(StorageError) as caught:
        await dynamo.flows.add_version(account.id, flow.id, yaml="x" * 500_000)
    assert type(caught.value).__module__.startswith("flowrunner")
    assert (await dynamo.flows.get(account.id, flow.id)).current_version == 0


async def test_cursor_of_another_account_is_refused(dynamo: DynamoStore) -> None:
    ada = await dynamo.accounts.create("ada", "h")
    bob = await dynamo.accounts.create("bob", "h")
    for i in range(3):
        await dynamo.flows.create(ada.id, name=f"f{i}")
    page = await dynamo.flows.list(ada.id, limit=1)
    assert page.next_cursor is not None
    with pytest.raises(InvalidCursor):
        await dynamo.flows.list(bob.id, cursor=page.next_cursor)


async def test_filtered_listing_continues_across_dynamodb_pages(
    dynamo: DynamoStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Small DynamoDB pages make the filter loop cross many Query calls within one listing.
    monkeypatch.setattr(paging, "FILTERED_BATCH", 2)
    account = await dynamo.accounts.create("ada", "h")
    made = []
    for i in range(13):
        flow = await dynamo.flows.create(account.id, name=f"f{i}", tags=["x"] if i % 3 else [])
        made.append(flow)
    wanted = [f.id for f in reversed(made) if f.tags]
    seen: list[str] = []
    cursor = None
    while True:
        page = await dynamo.flows.list(account.id, tags=["x"], limit=3, cursor=cursor)
        seen += [f.id for f in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == wanted


async def test_two_processes_appending_events_stay_gap_free(
    dynamo: DynamoStore, dynamodb_endpoint: str, clock: FakeClock
) -> None:
    # A second store is a second process: no shared locks or hints, only the conditional put.
    other = _store(dynamodb_endpoint, clock, dynamo.table.name.removesuffix("-main"))
    await other.connect()
    try:
        account = await dynamo.accounts.create("ada", "h")
        run = await dynamo.executions.create(account.id, flow_id="f", flow_version=1)

        async def writer(store: DynamoStore, name: str) -> None:
            for i in range(15):
                batch = [NewEvent("e", {"w": name, "i": i, "j": j}) for j in range(2)]
                await store.executions.append_events(account.id, run.id, batch)

        await asyncio.gather(writer(dynamo, "a"), writer(other, "b"))
        events = await other.executions.list_events(account.id, run.id)
        assert [e.seq for e in events] == list(range(1, 61))
        for name in "ab":
            assert [(e.data["i"], e.data["j"]) for e in events if e.data["w"] == name] == [
                (i, j) for i in range(15) for j in range(2)
            ]
        assert (await dynamo.executions.get(account.id, run.id)).last_event_seq == 60
    finally:
        await other.close()


async def test_large_appends_are_cut_into_contiguous_batches(dynamo: DynamoStore) -> None:
    account = await dynamo.accounts.create("ada", "h")
    run = await dynamo.executions.create(account.id, flow_id="f", flow_version=1)
    many = [NewEvent("n", {"i": i}) for i in range(250)]  # over the 99 events of one item
    heavy = [NewEvent("h", {"blob": "x" * 150_000}) for _ in range(4)]  # over 350 KB
    written = await dynamo.executions.append_events(account.id, run.id, many + heavy)
    assert [e.seq for e in written] == list(range(1, 255))
    tail = await dynamo.executions.list_events(account.id, run.id, after_seq=120, limit=5)
    assert [(e.seq, e.data["i"]) for e in tail] == [(s, s - 1) for s in range(121, 126)]
    heavy_back = await dynamo.executions.list_events(account.id, run.id, after_seq=250)
    assert [len(e.data["blob"]) for e in heavy_back] == [150_000] * 4


async def test_a_final_write_takes_the_next_free_number_after_another_processs_append(
    dynamo: DynamoStore, dynamodb_endpoint: str, clock: FakeClock
) -> None:
    other = _store(dynamodb_endpoint, clock, dynamo.table.name.removesuffix("-main"))
    await other.connect()
    try:
        account = await dynamo.accounts.create("ada", "h")
        # One batch (the transaction's own retry), and past one (the earlier batch's).
        for size in (3, 120):
            run = await dynamo.executions.create(
                account.id, flow_id="f", flow_version=1, status="running"
            )
            await dynamo.executions.append_events(account.id, run.id, [NewEvent("a")])
            # Another process appends: this store's idea of the next number (2) is stale
            # now, so its final write loses the race for it and goes on at the next free one.
            await other.executions.append_events(account.id, run.id, [NewEvent("b")] * 2)
            last = [NewEvent("n", {"i": i}) for i in range(size)] + [NewEvent("complete")]
            done = await dynamo.executions.update(
                account.id, run.id, expected_status=["running"], status="completed", events=last
            )
            assert done.status == "completed"
            assert done.last_event_seq == size + 4
            events = await other.executions.list_events(account.id, run.id)
            assert [e.seq for e in events] == list(range(1, size + 5))
            assert [e.type for e in events[3:]] == ["n"] * size + ["complete"]
            assert [(e.seq, e.type, e.data) for e in appended(done, last)] == [
                (e.seq, e.type, e.data) for e in events[3:]
            ]
            assert (await other.executions.get(account.id, run.id)).last_event_seq == size + 4
    finally:
        await other.close()


async def test_expiring_kv_entries_carry_dynamodb_ttl_and_are_purged_by_index(
    dynamo: DynamoStore, clock: FakeClock
) -> None:
    account = await dynamo.accounts.create("ada", "h")
    entry = await dynamo.kv.put(account.id, "ns", "k", {"v": 1}, ttl=timedelta(minutes=5))
    await dynamo.kv.put(account.id, "ns", "keep", 1)
    raw = await dynamo.table.get(f"KV#{account.id}\x00ns", "K#k")
    assert raw is not None
    assert entry.expires_at is not None
    assert raw["ttl"] >= int(entry.expires_at.timestamp())
    # Replacing without a TTL takes the entry out of expiry entirely.
    await dynamo.kv.put(account.id, "ns", "k", {"v": 2})
    clock.advance(timedelta(hours=1))
    assert await dynamo.kv.admin_purge_expired() == 0
    await dynamo.kv.put(account.id, "ns", "k", {"v": 3}, ttl=timedelta(seconds=1))
    clock.advance(timedelta(seconds=2))
    assert await dynamo.kv.admin_purge_expired() == 1
    assert [e.key for e in (await dynamo.kv.list(account.id, "ns")).items] == ["keep"]


async def test_finished_executions_leave_the_recovery_queue(
    dynamo: DynamoStore, clock: FakeClock
) -> None:
    account = await dynamo.accounts.create("ada", "h")
    run = await dynamo.executions.create(account.id, flow_id="f", flow_version=1)
    await dynamo.executions.acquire_lease(account.id, run.id, owner="w1", ttl=timedelta(seconds=1))
    await dynamo.executions.update(account.id, run.id, status="completed")
    raw = await dynamo.table.get(f"ACCOUNT#{account.id}", f"EXEC#{run.id}")
    assert raw is not None
    assert "gsi3pk" not in raw
    clock.advance(timedelta(minutes=1))
    assert await dynamo.executions.admin_claim_expired_leases(owner="w2", ttl=timedelta(1)) == []


async def test_a_checkpoint_item_from_before_the_resume_field_reads_with_it(
    dynamo: DynamoStore,
) -> None:
    """Items written when the runner's bookkeeping rode in ``results["$resume"]`` (there are
    no migrations here) read as checkpoints with it in ``resume``."""
    from flowrunner.storage.dynamodb.codec import dump_json

    account = await dynamo.accounts.create("ada", "h")
    run = await dynamo.executions.create(account.id, flow_id="f", flow_version=1)
    await dynamo.executions.save_checkpoint(
        account.id, run.id, shared={}, next_node="b", results={"a": 1}
    )
    pk = f"RUN#{account.id}#{run.id}"
    item = await dynamo.table.get(pk, "CHECKPOINT")
    assert item is not None
    del item["resume"]
    item["results"] = dump_json({"a": 1, "$resume": {"last_node": "a", "steps": 1}})
    await dynamo.table.put(item)
    old = await dynamo.executions.get_checkpoint(account.id, run.id)
    assert old is not None
    assert (dict(old.results), dict(old.resume)) == ({"a": 1}, {"last_node": "a", "steps": 1})
