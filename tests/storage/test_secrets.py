"""Conformance: encrypted secrets, on every backend."""

from __future__ import annotations

import pytest

from flowrunner.errors import NotFound
from flowrunner.storage import Account, Store


async def test_put_creates_then_replaces_keeping_created_at(store: Store, account: Account) -> None:
    first = await store.secrets.put(
        account.id, "API_KEY", ciphertext=b"\x00c1", key_id="k1", metadata={"note": "x"}
    )
    second = await store.secrets.put(account.id, "API_KEY", ciphertext=b"c2", key_id="k2")
    assert second.created_at == first.created_at
    assert second.updated_at > first.updated_at
    got = await store.secrets.get(account.id, "API_KEY")
    assert got == second
    assert got.ciphertext == b"c2"
    assert got.key_id == "k2"
    assert got.metadata == {}
    assert first.ciphertext == b"\x00c1"
    assert first.metadata == {"note": "x"}


async def test_secrets_are_scoped_by_account(
    store: Store, account: Account, other: Account
) -> None:
    await store.secrets.put(account.id, "K", ciphertext=b"mine", key_id="k")
    await store.secrets.put(other.id, "K", ciphertext=b"theirs", key_id="k")
    assert (await store.secrets.get(account.id, "K")).ciphertext == b"mine"
    await store.secrets.delete(other.id, "K")
    assert (await store.secrets.get(account.id, "K")).ciphertext == b"mine"
    with pytest.raises(NotFound):
        await store.secrets.get(other.id, "K")
    with pytest.raises(NotFound):
        await store.secrets.delete(other.id, "K")


async def test_list_by_prefix_in_key_order_with_pages(store: Store, account: Account) -> None:
    for key in ["db_pass", "DB_USER", "db_host", "smtp", "db%x"]:
        await store.secrets.put(account.id, key, ciphertext=b"c", key_id="k")
    page = await store.secrets.list(account.id, key_prefix="db_", limit=1)
    assert [s.key for s in page.items] == ["db_host"]
    rest = await store.secrets.list(account.id, key_prefix="db_", cursor=page.next_cursor)
    assert [s.key for s in rest.items] == ["db_pass"]
    assert rest.next_cursor is None
    assert [s.key for s in (await store.secrets.list(account.id, key_prefix="db%")).items] == [
        "db%x"
    ]


async def test_admin_list_by_key_id_spans_accounts(
    store: Store, account: Account, other: Account
) -> None:
    await store.secrets.put(account.id, "a", ciphertext=b"c", key_id="old")
    await store.secrets.put(other.id, "b", ciphertext=b"c", key_id="old")
    await store.secrets.put(other.id, "c", ciphertext=b"c", key_id="new")
    seen, cursor = [], None
    while True:
        page = await store.secrets.admin_list_by_key_id("old", limit=1, cursor=cursor)
        seen += [(s.account_id, s.key) for s in page.items]
        if (cursor := page.next_cursor) is None:
            break
    assert sorted(seen) == sorted([(account.id, "a"), (other.id, "b")])


async def test_an_accounts_secrets_come_in_key_order_across_pages(
    store: Store, account: Account
) -> None:
    for key in ("c", "a", "b"):
        await store.secrets.put(account.id, key, ciphertext=b"x", key_id="k1")
    first = await store.secrets.list(account.id, limit=2)
    assert [s.key for s in first.items] == ["a", "b"]
    assert first.next_cursor is not None
    rest = await store.secrets.list(account.id, limit=2, cursor=first.next_cursor)
    assert [s.key for s in rest.items] == ["c"]
    assert rest.next_cursor is None
