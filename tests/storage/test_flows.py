"""Conformance: flows, immutable versions and optimistic concurrency, on every backend."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import timedelta
from typing import Any

import pytest

from flowrunner.errors import Conflict, NotFound
from flowrunner.storage import Account, Store
from flowrunner.storage.pagination import InvalidCursor
from tests.storage.backends import FakeClock


async def test_new_flow_has_no_version_until_one_is_added(store: Store, account: Account) -> None:
    flow = await store.flows.create(account.id, name="sync", description="d", tags=["a", "b"])
    assert flow.current_version == 0
    assert flow.tags == ("a", "b")
    assert await store.flows.get(account.id, flow.id) == flow


async def test_adding_versions_numbers_them_and_bumps_the_flow(
    store: Store, account: Account
) -> None:
    flow = await store.flows.create(account.id, name="f")
    v1 = await store.flows.add_version(account.id, flow.id, yaml="a: 1\n", author="ada")
    v2 = await store.flows.add_version(account.id, flow.id, yaml="a: 2\n")
    assert (v1.number, v2.number) == (1, 2)
    assert v1.checksum == hashlib.sha256(b"a: 1\n").hexdigest()
    assert (await store.flows.get(account.id, flow.id)).current_version == 2
    # Versions are immutable: the first one reads back exactly as written.
    assert await store.flows.get_version(account.id, flow.id, 1) == v1
    page = await store.flows.list_versions(account.id, flow.id, limit=1)
    assert [v.number for v in page.items] == [2]
    rest = await store.flows.list_versions(account.id, flow.id, cursor=page.next_cursor)
    assert [v.number for v in rest.items] == [1]
    assert rest.next_cursor is None


async def test_a_version_keeps_its_message_and_versions_without_one_read_none(
    store: Store, account: Account
) -> None:
    flow = await store.flows.create(account.id, name="f")
    said = "retry the fetch twice — ünïcode and\na second line"
    v1 = await store.flows.add_version(account.id, flow.id, yaml="a: 1\n", message=said)
    v2 = await store.flows.add_version(account.id, flow.id, yaml="a: 2\n")
    assert (v1.message, v2.message) == (said, None)
    assert (await store.flows.get_version(account.id, flow.id, 1)).message == said
    page = await store.flows.list_versions(account.id, flow.id)
    assert [(v.number, v.message) for v in page.items] == [(2, None), (1, said)]


async def test_stale_expected_version_is_a_conflict(store: Store, account: Account) -> None:
    flow = await store.flows.create(account.id, name="f")
    await store.flows.add_version(account.id, flow.id, yaml="v1", expected_current=0)
    with pytest.raises(Conflict):
        await store.flows.add_version(account.id, flow.id, yaml="late", expected_current=0)
    assert (await store.flows.get(account.id, flow.id)).current_version == 1


async def test_concurrent_editors_with_same_base_only_one_wins(
    store: Store, account: Account
) -> None:
    flow = await store.flows.create(account.id, name="f")
    results = await asyncio.gather(
        *(
            store.flows.add_version(account.id, flow.id, yaml=f"v{i}", expected_current=0)
            for i in range(5)
        ),
        return_exceptions=True,
    )
    assert sum(not isinstance(r, BaseException) for r in results) == 1
    assert all(isinstance(r, Conflict) for r in results if isinstance(r, BaseException))


async def test_concurrent_version_adds_without_expectation_get_distinct_numbers(
    store: Store, account: Account
) -> None:
    flow = await store.flows.create(account.id, name="f")
    versions = await asyncio.gather(
        *(store.flows.add_version(account.id, flow.id, yaml=f"v{i}") for i in range(8))
    )
    assert sorted(v.number for v in versions) == list(range(1, 9))


async def test_flows_are_invisible_to_other_accounts(
    store: Store, account: Account, other: Account
) -> None:
    flow = await store.flows.create(account.id, name="mine")
    await store.flows.add_version(account.id, flow.id, yaml="x")
    with pytest.raises(NotFound):
        await store.flows.get(other.id, flow.id)
    with pytest.raises(NotFound):
        await store.flows.get_version(other.id, flow.id, 1)
    with pytest.raises(NotFound):
        await store.flows.add_version(other.id, flow.id, yaml="hijack")
    with pytest.raises(NotFound):
        await store.flows.update(other.id, flow.id, name="x")
    with pytest.raises(NotFound):
        await store.flows.delete(other.id, flow.id)
    assert (await store.flows.list(other.id)).items == []


async def test_soft_delete_hides_flow_but_keeps_versions(store: Store, account: Account) -> None:
    flow = await store.flows.create(account.id, name="f")
    await store.flows.add_version(account.id, flow.id, yaml="x")
    await store.flows.delete(account.id, flow.id)
    with pytest.raises(NotFound):
        await store.flows.get(account.id, flow.id)
    deleted = await store.flows.get(account.id, flow.id, include_deleted=True)
    assert deleted.deleted_at is not None
    assert (await store.flows.get_version(account.id, flow.id, 1)).yaml == "x"
    assert (await store.flows.list(account.id)).items == []
    assert len((await store.flows.list(account.id, include_deleted=True)).items) == 1
    with pytest.raises(NotFound):
        await store.flows.add_version(account.id, flow.id, yaml="y")


async def test_update_changes_metadata_and_tags(store: Store, account: Account) -> None:
    flow = await store.flows.create(account.id, name="f", tags=["old"])
    updated = await store.flows.update(account.id, flow.id, description="new", tags=["x", "y"])
    assert updated.tags == ("x", "y")
    assert updated.name == "f"
    assert updated.description == "new"
    assert (await store.flows.list(account.id, tags=["old"])).items == []
    assert [f.id for f in (await store.flows.list(account.id, tags=["y"])).items] == [flow.id]


async def test_list_filters_by_name_tags_and_time(
    store: Store, account: Account, clock: FakeClock
) -> None:
    a = await store.flows.create(account.id, name="Order Sync", tags=["prod", "shop"])
    clock.advance(timedelta(hours=1))
    middle = clock.now
    b = await store.flows.create(account.id, name="order cleanup", tags=["prod"])
    c = await store.flows.create(account.id, name="Report", tags=["shop"])

    async def names(**filters: Any) -> list[str]:
        return [f.id for f in (await store.flows.list(account.id, **filters)).items]

    assert await names(name_contains="ORDER") == [b.id, a.id]
    assert await names(tags=["prod", "shop"]) == [a.id]
    assert await names(tags=["shop"]) == [c.id, a.id]
    assert await names(created_after=middle) == [c.id, b.id]
    assert await names(created_before=middle) == [a.id]


async def test_pagination_walks_every_flow_once_newest_first(
    store: Store, account: Account
) -> None:
    made = [await store.flows.create(account.id, name=f"f{i}") for i in range(7)]
    seen, cursor = [], None
    while True:
        page = await store.flows.list(account.id, limit=3, cursor=cursor)
        seen += [f.id for f in page.items]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == [f.id for f in reversed(made)]


async def test_garbage_cursor_is_rejected(store: Store, account: Account) -> None:
    with pytest.raises(InvalidCursor):
        await store.flows.list(account.id, cursor="not-a-cursor")
