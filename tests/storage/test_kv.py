"""Conformance: the namespaced key-value store, on every backend."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from flowrunner.errors import Conflict, NotFound
from flowrunner.storage import Account, Store
from tests.storage.backends import FakeClock


async def test_put_get_replace_delete(store: Store, account: Account) -> None:
    first = await store.kv.put(account.id, "ns", "k", {"a": [1, 2.5, None, "x"]})
    assert (await store.kv.get(account.id, "ns", "k")).value == {"a": [1, 2.5, None, "x"]}
    second = await store.kv.put(account.id, "ns", "k", "plain string")
    assert second.created_at == first.created_at
    assert second.value == "plain string"
    assert await store.kv.delete(account.id, "ns", "k")
    assert not await store.kv.delete(account.id, "ns", "k")
    with pytest.raises(NotFound):
        await store.kv.get(account.id, "ns", "k")


async def test_keys_are_scoped_by_account_and_namespace(
    store: Store, account: Account, other: Account
) -> None:
    await store.kv.put(account.id, "ns", "k", 1)
    await store.kv.put(account.id, "other-ns", "k", 2)
    await store.kv.put(other.id, "ns", "k", 3)
    assert (await store.kv.get(account.id, "ns", "k")).value == 1
    assert (await store.kv.get(account.id, "other-ns", "k")).value == 2
    assert (await store.kv.get(other.id, "ns", "k")).value == 3
    assert [e.value for e in (await store.kv.list(other.id, "ns")).items] == [3]


async def test_ttl_expires_entries(store: Store, account: Account, clock: FakeClock) -> None:
    await store.kv.put(account.id, "ns", "short", 1, ttl=timedelta(seconds=10))
    await store.kv.put(account.id, "ns", "forever", 2)
    assert (await store.kv.get(account.id, "ns", "short")).value == 1
    clock.advance(timedelta(seconds=11))
    with pytest.raises(NotFound):
        await store.kv.get(account.id, "ns", "short")
    assert [e.key for e in (await store.kv.list(account.id, "ns")).items] == ["forever"]
    assert not await store.kv.delete(account.id, "ns", "short")
    # Writing an expired key again starts a new entry.
    fresh = await store.kv.put(account.id, "ns", "short", 3)
    assert fresh.expires_at is None
    assert fresh.created_at == fresh.updated_at


async def test_purge_removes_only_expired_entries(
    store: Store, account: Account, other: Account, clock: FakeClock
) -> None:
    await store.kv.put(account.id, "ns", "a", 1, ttl=timedelta(seconds=1))
    await store.kv.put(other.id, "ns", "b", 1, ttl=timedelta(seconds=1))
    await store.kv.put(account.id, "ns", "c", 1, ttl=timedelta(hours=1))
    clock.advance(timedelta(seconds=2))
    assert await store.kv.admin_purge_expired() == 2
    assert await store.kv.admin_purge_expired() == 0
    assert (await store.kv.get(account.id, "ns", "c")).value == 1


async def test_list_by_prefix_pages_in_key_order(store: Store, account: Account) -> None:
    for key in ["user:3", "user:1", "order:1", "user:2", "User:9", "user_x"]:
        await store.kv.put(account.id, "ns", key, key)
    page = await store.kv.list(account.id, "ns", prefix="user:", limit=2)
    assert [e.key for e in page.items] == ["user:1", "user:2"]
    rest = await store.kv.list(account.id, "ns", prefix="user:", cursor=page.next_cursor)
    assert [e.key for e in rest.items] == ["user:3"]
    assert rest.next_cursor is None
    # "_" is a LIKE wildcard in SQL; prefixes are literal.
    assert [e.key for e in (await store.kv.list(account.id, "ns", prefix="user_")).items] == [
        "user_x"
    ]


async def test_where_query_matches_top_level_fields(store: Store, account: Account) -> None:
    for i in range(12):
        status = "open" if i % 3 == 0 else "closed"
        await store.kv.put(account.id, "tickets", f"t{i:02d}", {"status": status, "n": i})
    await store.kv.put(account.id, "tickets", "t99", ["not", "an", "object"])
    page = await store.kv.list(account.id, "tickets", where={"status": "open"}, limit=3)
    assert [e.key for e in page.items] == ["t00", "t03", "t06"]
    rest = await store.kv.list(
        account.id, "tickets", where={"status": "open"}, cursor=page.next_cursor
    )
    assert [e.key for e in rest.items] == ["t09"]
    assert rest.next_cursor is None
    both = await store.kv.list(account.id, "tickets", where={"status": "closed", "n": 4})
    assert [e.key for e in both.items] == ["t04"]


async def test_increment_counts_from_zero_and_keeps_the_ttl(
    store: Store, account: Account, clock: FakeClock
) -> None:
    assert (await store.kv.increment(account.id, "ns", "n")).value == 1
    assert (await store.kv.increment(account.id, "ns", "n", 41)).value == 42
    assert (await store.kv.increment(account.id, "ns", "n", -0.5)).value == 41.5
    assert (await store.kv.get(account.id, "ns", "n")).value == 41.5
    timed = await store.kv.put(account.id, "ns", "t", 5, ttl=timedelta(seconds=10))
    bumped = await store.kv.increment(account.id, "ns", "t", 2)
    assert (bumped.value, bumped.expires_at, bumped.created_at) == (
        7,
        timed.expires_at,
        timed.created_at,
    )
    clock.advance(timedelta(seconds=11))
    # An expired entry counts as missing: a new entry, without the old TTL.
    fresh = await store.kv.increment(account.id, "ns", "t", 2)
    assert (fresh.value, fresh.expires_at) == (2, None)
    assert (await store.kv.get(account.id, "ns", "t")).value == 2


async def test_increment_refuses_what_is_not_a_number(store: Store, account: Account) -> None:
    for value in ["3", True, None, [1], {"n": 1}]:
        await store.kv.put(account.id, "ns", "k", value)
        with pytest.raises(Conflict, match="not a number"):
            await store.kv.increment(account.id, "ns", "k")
        assert (await store.kv.get(account.id, "ns", "k")).value == value


async def test_append_grows_a_list_and_refuses_other_values(store: Store, account: Account) -> None:
    assert (await store.kv.append(account.id, "ns", "l", {"a": 1})).value == [{"a": 1}]
    assert (await store.kv.append(account.id, "ns", "l", [2])).value == [{"a": 1}, [2]]
    await store.kv.put(account.id, "ns", "s", "text")
    with pytest.raises(Conflict, match="not a list"):
        await store.kv.append(account.id, "ns", "s", 1)
    assert (await store.kv.get(account.id, "ns", "s")).value == "text"


async def test_concurrent_increments_and_appends_all_count(
    store: Store, account: Account, other: Account
) -> None:
    writers = 16
    await asyncio.gather(
        *(store.kv.increment(account.id, "ns", "hits") for _ in range(writers)),
        *(store.kv.append(account.id, "ns", "log", i) for i in range(writers)),
        store.kv.increment(other.id, "ns", "hits", 100),
    )
    assert (await store.kv.get(account.id, "ns", "hits")).value == writers
    log = (await store.kv.get(account.id, "ns", "log")).value
    assert isinstance(log, list)
    assert sorted(log) == list(range(writers))
    assert (await store.kv.get(other.id, "ns", "hits")).value == 100


async def test_put_new_creates_only_where_no_live_entry_is(
    store: Store, account: Account, other: Account, clock: FakeClock
) -> None:
    made = await store.kv.put_new(account.id, "ns", "k", {"v": 1}, ttl=timedelta(seconds=10))
    assert made.value == {"v": 1}
    assert made.created_at == made.updated_at
    assert made.expires_at == made.created_at + timedelta(seconds=10)
    with pytest.raises(Conflict):
        await store.kv.put_new(account.id, "ns", "k", {"v": 2})
    assert (await store.kv.get(account.id, "ns", "k")).value == {"v": 1}
    # Another account's key of that name is another key.
    assert (await store.kv.put_new(other.id, "ns", "k", 3)).value == 3
    # An expired entry is as good as none: replaced whole, its TTL gone.
    clock.advance(timedelta(seconds=11))
    again = await store.kv.put_new(account.id, "ns", "k", {"v": 4})
    assert (again.value, again.expires_at) == ({"v": 4}, None)
    assert again.created_at > made.expires_at
    assert (await store.kv.get(account.id, "ns", "k")).value == {"v": 4}
    with pytest.raises(Conflict):
        await store.kv.put_new(account.id, "ns", "k", {"v": 5})
    # Deleted: free again.
    await store.kv.delete(account.id, "ns", "k")
    assert (await store.kv.put_new(account.id, "ns", "k", 6)).value == 6


async def test_of_concurrent_put_news_exactly_one_wins(store: Store, account: Account) -> None:
    writers = 16
    results = await asyncio.gather(
        *(store.kv.put_new(account.id, "ns", "once", i) for i in range(writers)),
        return_exceptions=True,
    )
    won = [r for r in results if not isinstance(r, BaseException)]
    assert len(won) == 1, results
    assert all(isinstance(r, Conflict) for r in results if r not in won), results
    assert (await store.kv.get(account.id, "ns", "once")).value == won[0].value
