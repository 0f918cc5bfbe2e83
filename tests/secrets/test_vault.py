from __future__ import annotations

from typing import Any

import pytest

from flowrunner.audit import AuditLog, actions
from flowrunner.errors import InvalidInput, NotFound
from flowrunner.secrets import Keyring, SecretVault, key_id
from flowrunner.storage import Account, Store
from tests.secrets.conftest import KEY1

SMTP = {"host": "smtp.example.test", "user": "mailer", "password": "p4ss-word", "port": 587}


@pytest.mark.parametrize("value", ["plain-value", SMTP])
async def test_values_round_trip_and_are_encrypted_at_rest(
    vault: SecretVault, store: Store, alice: Account, value: Any
) -> None:
    await vault.put(alice, "API_KEY", value)
    assert await vault.get_value(alice, "API_KEY") == value
    stored = await store.secrets.get(alice.id, "API_KEY")
    assert stored.key_id == key_id(KEY1)
    assert b"p4ss-word" not in stored.ciphertext
    assert b"plain-value" not in stored.ciphertext


async def test_listing_has_keys_and_metadata_but_no_values(
    vault: SecretVault, alice: Account
) -> None:
    await vault.put(alice, "B_KEY", "value-b", metadata={"description": "second"})
    await vault.put(alice, "A_KEY", "value-a")
    page = await vault.list(alice)
    assert [s.key for s in page.items] == ["A_KEY", "B_KEY"]
    assert page.items[1].metadata == {"description": "second"}
    assert "value-a" not in repr(page.items)


async def test_every_change_and_read_is_audited_without_the_value(
    vault: SecretVault, audit: AuditLog, alice: Account
) -> None:
    await vault.put(alice, "K", "v1-secret")
    await vault.put(alice, "K", "v2-secret")
    await vault.get_value(alice, "K")
    await vault.delete(alice, "K")
    records = (await audit.list(None)).items
    assert [(r.action, r.target, r.account_id) for r in records] == [
        (actions.SECRET_CREATED, "K", alice.id),
        (actions.SECRET_UPDATED, "K", alice.id),
        (actions.SECRET_READ, "K", alice.id),
        (actions.SECRET_DELETED, "K", alice.id),
    ]
    assert "secret" not in repr([r.data for r in records])


async def test_an_admin_acting_for_an_account_is_recorded_as_the_actor(
    vault: SecretVault, audit: AuditLog, alice: Account, bob: Account
) -> None:
    await vault.put(alice, "K", "v", actor=bob)
    record = (await audit.list(alice.id)).items[0]
    assert (record.account_id, record.actor) == (alice.id, bob.id)


async def test_deleted_secrets_are_gone(vault: SecretVault, alice: Account) -> None:
    await vault.put(alice, "K", "v")
    await vault.delete(alice, "K")
    with pytest.raises(NotFound):
        await vault.get_value(alice, "K")
    with pytest.raises(NotFound):
        await vault.delete(alice, "K")


async def test_another_accounts_secrets_are_not_found(
    vault: SecretVault, alice: Account, bob: Account
) -> None:
    await vault.put(alice, "K", "alice-only")
    with pytest.raises(NotFound):
        await vault.get_value(bob, "K")
    with pytest.raises(NotFound):
        await vault.delete(bob, "K")
    assert (await vault.list(bob)).items == []
    assert await vault.resolve_all(bob.id) == {}
    assert await vault.get_value(alice, "K") == "alice-only"


@pytest.mark.parametrize("key", ["", "1ABC", "has-dash", "has.dot", "x" * 129])
async def test_keys_must_be_usable_in_expressions(
    vault: SecretVault, alice: Account, key: str
) -> None:
    with pytest.raises(InvalidInput):
        await vault.put(alice, key, "v")


@pytest.mark.parametrize("value", [42, ["a"], None, "x" * (64 * 1024)])
async def test_values_must_be_a_string_or_an_object_of_bounded_size(
    vault: SecretVault, alice: Account, value: Any
) -> None:
    with pytest.raises(InvalidInput):
        await vault.put(alice, "K", value)


async def test_resolve_all_gives_every_value_of_the_account_for_runs(
    vault: SecretVault, alice: Account, bob: Account
) -> None:
    await vault.put(alice, "TOKEN", "t-1")
    await vault.put(alice, "SMTP", SMTP)
    await vault.put(bob, "TOKEN", "bobs")
    assert await vault.resolve_all(alice.id) == {"TOKEN": "t-1", "SMTP": SMTP}


async def test_a_new_vault_with_the_same_key_reads_old_secrets(
    store: Store, audit: AuditLog, alice: Account
) -> None:
    await SecretVault(store, Keyring([KEY1]), audit).put(alice, "K", "survives")
    restarted = SecretVault(store, Keyring([KEY1]), audit)
    assert await restarted.get_value(alice, "K") == "survives"


async def test_metadata_is_bounded(vault: SecretVault, alice: Account) -> None:
    with pytest.raises(InvalidInput):
        await vault.put(alice, "K", "v", metadata={"note": "x" * (16 * 1024)})
