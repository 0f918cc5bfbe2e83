"""Conformance: account node types and their versions over the key-value store's system
partition, on every backend — numbering without gaps or repeats under concurrent saves, one
winner of concurrent creates of a name and of concurrent If-Match updates, the newest version
current, versions newest first with cursors, deletion keeping the history,
and no account reading another's types."""

from __future__ import annotations

import asyncio

import pytest

from flowrunner.custom_types.spec import CustomTypeSpec
from flowrunner.custom_types.store import CustomType, CustomTypeStore
from flowrunner.errors import Conflict, InvalidInput, NotFound
from flowrunner.storage import Account, Store


def spec(script: str, name: str = "acme.x") -> CustomTypeSpec:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}}
    return CustomTypeSpec(name, "d", schema, script, ("long",))


async def test_saves_number_versions_and_the_newest_is_current(
    store: Store, account: Account
) -> None:
    types = CustomTypeStore(store)
    first = await types.save(account.id, spec("return 1"), author="ada", message="first")
    second = await types.save(account.id, spec("return 2"), author=None, message=None)
    assert (first.version, second.version) == (1, 2)
    current = await types.current(account.id, "acme.x")
    assert current == second
    assert await types.version(account.id, "acme.x", 1) == first
    assert first.spec.params["properties"] == {"n": {"type": "integer"}}
    assert (first.author, first.message, first.spec.actions) == ("ada", "first", ("long",))
    page = await types.versions(account.id, "acme.x", limit=1)
    assert [v.version for v in page.items] == [2]
    rest = await types.versions(account.id, "acme.x", cursor=page.next_cursor)
    assert [v.version for v in rest.items] == [1]
    assert rest.next_cursor is None


async def test_concurrent_saves_get_distinct_numbers_and_the_highest_ends_current(
    store: Store, account: Account
) -> None:
    types = CustomTypeStore(store)
    saved = await asyncio.gather(
        *(types.save(account.id, spec(f"return {i}"), author=None, message=None) for i in range(8))
    )
    assert sorted(s.version for s in saved) == list(range(1, 9))
    current = await types.current(account.id, "acme.x")
    assert current.version == 8
    assert current == next(s for s in saved if s.version == 8)
    listed = await types.versions(account.id, "acme.x")
    assert [v.version for v in listed.items] == list(range(8, 0, -1))


async def test_a_prefix_of_another_name_lists_only_its_own_versions(
    store: Store, account: Account
) -> None:
    types = CustomTypeStore(store)
    await types.save(account.id, spec("return 1", "acme.x"), author=None, message=None)
    await types.save(account.id, spec("return 1", "acme.xy"), author=None, message=None)
    assert [v.name for v in (await types.versions(account.id, "acme.x")).items] == ["acme.x"]
    assert [t.name for t in await types.all_current(account.id)] == ["acme.x", "acme.xy"]


async def test_delete_hides_the_type_keeps_its_versions_and_numbering_goes_on(
    store: Store, account: Account
) -> None:
    types = CustomTypeStore(store)
    await types.save(account.id, spec("return 1"), author=None, message=None)
    await types.delete(account.id, "acme.x")
    with pytest.raises(NotFound):
        await types.current(account.id, "acme.x")
    with pytest.raises(NotFound):
        await types.delete(account.id, "acme.x")
    assert await types.all_current(account.id) == []
    assert (await types.version(account.id, "acme.x", 1)).spec.script == "return 1"
    again = await types.save(account.id, spec("return 2"), author=None, message=None)
    assert again.version == 2


async def test_types_are_invisible_to_other_accounts_and_to_the_accounts_own_kv(
    store: Store, account: Account, other: Account
) -> None:
    types = CustomTypeStore(store)
    await types.save(account.id, spec("return 1"), author=None, message=None)
    assert await types.all_current(other.id) == []
    with pytest.raises(NotFound):
        await types.current(other.id, "acme.x")
    with pytest.raises(NotFound):
        await types.version(other.id, "acme.x", 1)
    # A run's store node reaches its own account's partition only: nothing there.
    for namespace in ("node-types:" + account.id, "node-types"):
        assert (await store.kv.list(account.id, namespace)).items == []


async def test_of_concurrent_creates_of_one_name_one_is_stored(
    store: Store, account: Account
) -> None:
    types = CustomTypeStore(store)
    results = await asyncio.gather(
        *(
            types.create(account.id, spec(f"return {i}"), author=None, message=None)
            for i in range(8)
        ),
        return_exceptions=True,
    )
    won = [r for r in results if isinstance(r, CustomType)]
    assert len(won) == 1, results
    assert all(isinstance(r, Conflict) for r in results if r is not won[0]), results
    assert won[0].version == 1
    assert await types.current(account.id, "acme.x") == won[0]
    assert [v.version for v in (await types.versions(account.id, "acme.x")).items] == [1]
    # Once it is stored, a create is told it exists; the claim is gone (updates go on).
    with pytest.raises(Conflict, match="exists: update it instead"):
        await types.create(account.id, spec("return 9"), author=None, message=None)
    again = await types.update(
        account.id,
        spec("return 10"),
        expected_version=1,
        max_versions=10,
        author=None,
        message=None,
    )
    assert again.version == 2


async def test_of_concurrent_updates_from_one_version_one_is_stored(
    store: Store, account: Account
) -> None:
    types = CustomTypeStore(store)
    await types.create(account.id, spec("return 0"), author=None, message=None)
    results = await asyncio.gather(
        *(
            types.update(
                account.id,
                spec(f"return {i}"),
                expected_version=1,
                max_versions=10,
                author=None,
                message=None,
            )
            for i in range(8)
        ),
        return_exceptions=True,
    )
    won = [r for r in results if isinstance(r, CustomType)]
    assert len(won) == 1, results
    lost = [r for r in results if r is not won[0]]
    assert all(isinstance(r, Conflict) and "at version 2, not 1" in r.message for r in lost)
    assert await types.current(account.id, "acme.x") == won[0]
    # Without If-Match every update is stored, one after another.
    plain = await asyncio.gather(
        *(
            types.update(
                account.id,
                spec(f"return {i}"),
                expected_version=None,
                max_versions=20,
                author=None,
                message=None,
            )
            for i in range(4)
        )
    )
    assert sorted(p.version for p in plain) == [3, 4, 5, 6]
    assert (await types.current(account.id, "acme.x")).version == 6
    with pytest.raises(InvalidInput, match="has 6 versions"):
        await types.update(
            account.id,
            spec("x"),
            expected_version=None,
            max_versions=6,
            author=None,
            message=None,
        )
    deleted = await types.delete(account.id, "acme.x")
    assert deleted.version == 6
    with pytest.raises(NotFound):
        await types.update(
            account.id,
            spec("x"),
            expected_version=None,
            max_versions=20,
            author=None,
            message=None,
        )
