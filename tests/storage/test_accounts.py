"""Conformance: accounts and API tokens, on every backend."""

from __future__ import annotations

from datetime import timedelta

import pytest

from flowrunner.errors import Conflict, NotFound
from flowrunner.storage import Account, Store
from tests.storage.backends import FakeClock


async def test_created_account_reads_back_by_id_and_username(store: Store) -> None:
    created = await store.accounts.create("ada", "argon2$x", is_admin=True)
    assert await store.accounts.get(created.id) == created
    assert await store.accounts.get_by_username("ada") == created
    assert created.is_admin
    assert not created.disabled
    assert created.created_at.tzinfo is not None


async def test_username_is_unique(store: Store, account: Account) -> None:
    with pytest.raises(Conflict):
        await store.accounts.create(account.username, "other")


async def test_missing_account_is_not_found(store: Store) -> None:
    with pytest.raises(NotFound):
        await store.accounts.get("nope")
    with pytest.raises(NotFound):
        await store.accounts.get_by_username("nope")
    with pytest.raises(NotFound):
        await store.accounts.update("nope", disabled=True)


async def test_update_changes_only_given_fields(store: Store, account: Account) -> None:
    updated = await store.accounts.update(account.id, disabled=True)
    assert updated.disabled
    assert updated.password_hash == account.password_hash
    assert updated.updated_at > account.updated_at
    assert await store.accounts.get(account.id) == updated
    rehashed = await store.accounts.update(account.id, password_hash="new")
    assert rehashed.password_hash == "new"
    assert rehashed.disabled


async def test_admin_list_filters_by_username_and_pages(store: Store) -> None:
    for name in ["alice", "ALBERT", "bob", "carol", "alfred"]:
        await store.accounts.create(name, "h")
    page = await store.accounts.admin_list(username_contains="al", limit=2)
    assert [a.username for a in page.items] == ["alfred", "ALBERT"]
    rest = await store.accounts.admin_list(username_contains="al", cursor=page.next_cursor)
    assert [a.username for a in rest.items] == ["alice"]
    assert rest.next_cursor is None


async def test_token_is_found_by_hash_and_scoped_by_account(
    store: Store, account: Account, other: Account
) -> None:
    token = await store.tokens.create(account.id, name="ci", prefix="fr_ab", token_hash="h1")
    assert await store.tokens.get_by_hash("h1") == token
    assert await store.tokens.get(account.id, token.id) == token
    with pytest.raises(NotFound):
        await store.tokens.get(other.id, token.id)
    with pytest.raises(NotFound):
        await store.tokens.revoke(other.id, token.id)
    assert (await store.tokens.list(other.id)).items == []


async def test_token_hash_is_unique_across_accounts(
    store: Store, account: Account, other: Account
) -> None:
    await store.tokens.create(account.id, name="a", prefix="p", token_hash="same")
    with pytest.raises(Conflict):
        await store.tokens.create(other.id, name="b", prefix="p", token_hash="same")


async def test_token_for_missing_account_is_not_found(store: Store) -> None:
    with pytest.raises(NotFound):
        await store.tokens.create("ghost", name="a", prefix="p", token_hash="h")


async def test_touch_and_revoke_record_times_and_usability(
    store: Store, account: Account, clock: FakeClock
) -> None:
    token = await store.tokens.create(
        account.id, name="t", prefix="p", token_hash="h", expires_at=clock.now + timedelta(days=1)
    )
    assert token.is_usable(clock.now)
    await store.tokens.touch(account.id, token.id)
    used = await store.tokens.get(account.id, token.id)
    assert used.last_used_at is not None
    revoked = await store.tokens.revoke(account.id, token.id)
    assert revoked.revoked_at is not None
    assert not revoked.is_usable(clock.now)
    again = await store.tokens.revoke(account.id, token.id)
    assert again.revoked_at == revoked.revoked_at
    assert not token.is_usable(clock.now + timedelta(days=2))


async def test_tokens_list_newest_first(store: Store, account: Account) -> None:
    made = [
        await store.tokens.create(account.id, name=f"t{i}", prefix="p", token_hash=f"h{i}")
        for i in range(3)
    ]
    page = await store.tokens.list(account.id)
    assert [t.id for t in page.items] == [t.id for t in reversed(made)]
