"""The issue's rotation scenario, on a real SQLite file and through settings as at start:
secrets written under key 1 read correctly after rotating to key 2 and removing key 1, and a
wrong key set fails loudly at start, not at the first read."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from pydantic import SecretStr

from flowrunner.audit import AuditLog, actions
from flowrunner.config import Settings
from flowrunner.errors import VaultError
from flowrunner.secrets import Keyring, SecretVault, key_id
from flowrunner.storage import Account, Store, open_store
from tests.secrets.conftest import KEY1, KEY2

SMTP = {"host": "smtp.example.test", "password": "p4ss"}
SECRETS = 25


@pytest.fixture(autouse=True)
def small_rotation_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    # Several batches with few secrets: paging through a key id is what is under test.
    monkeypatch.setattr("flowrunner.secrets.vault.ROTATION_BATCH", 10)


@asynccontextmanager
async def started(data_dir: Path, *keys: str) -> AsyncIterator[tuple[Store, SecretVault]]:
    """What a server start does: open the store, load the keyring, verify it."""
    settings = Settings(data_dir=data_dir, secret_keys=SecretStr(",".join(keys)) if keys else None)
    store = await open_store(settings)
    try:
        keyring = Keyring.from_settings(settings)
        await keyring.verify(store)
        yield store, SecretVault(store, keyring, AuditLog(store))
    finally:
        await store.close()


async def seed(data_dir: Path, *keys: str) -> tuple[Account, Account]:
    async with started(data_dir, *keys) as (store, vault):
        alice = await store.accounts.create("alice", "x")
        bob = await store.accounts.create("bob", "x")
        for n in range(SECRETS):
            await vault.put(alice, f"K{n}", f"alice-{n}")
        await vault.put(bob, "SMTP", SMTP)
        return alice, bob


async def test_secrets_survive_rotating_to_a_new_key_and_dropping_the_old(
    tmp_path: Path,
) -> None:
    alice, bob = await seed(tmp_path, KEY1)
    async with started(tmp_path, KEY2, KEY1) as (store, vault):
        # Both keys loaded: everything is still readable before rotation.
        assert await vault.get_value(bob, "SMTP") == SMTP
        assert await vault.rotate() == SECRETS + 1
        stored = await store.secrets.admin_list_by_key_id(key_id(KEY1))
        assert stored.items == []
        assert await vault.rotate() == 0  # idempotent
    async with started(tmp_path, KEY2) as (store, vault):
        assert await vault.get_value(bob, "SMTP") == SMTP
        resolved = await vault.resolve_all(alice.id)
        assert resolved == {f"K{n}": f"alice-{n}" for n in range(SECRETS)}
        rotations = [
            r
            for r in (await AuditLog(store).list(None, limit=1000)).items
            if r.action == actions.KEY_ROTATED
        ]
        assert rotations[0].data["re_encrypted"] == SECRETS + 1
        assert rotations[0].data["from_key_ids"] == [key_id(KEY1)]


async def test_dropping_a_key_before_rotating_fails_loudly_at_start(tmp_path: Path) -> None:
    await seed(tmp_path, KEY1)
    with pytest.raises(VaultError, match=key_id(KEY1)):
        async with started(tmp_path, KEY2):
            pass


async def test_a_key_still_in_use_cannot_be_rotated_away_without_the_key(
    tmp_path: Path,
) -> None:
    await seed(tmp_path, KEY1)
    settings = Settings(data_dir=tmp_path, secret_keys=SecretStr(KEY2))
    store = await open_store(settings)
    try:
        vault = SecretVault(store, Keyring.from_settings(settings), AuditLog(store))
        with pytest.raises(VaultError, match=key_id(KEY1)):
            await vault.rotate()
    finally:
        await store.close()


async def test_a_fresh_store_verifies_with_any_key(tmp_path: Path) -> None:
    async with started(tmp_path, KEY2):
        pass


async def test_the_generated_default_key_survives_restarts(tmp_path: Path) -> None:
    async with started(tmp_path) as (store, vault):
        alice = await store.accounts.create("alice", "x")
        await vault.put(alice, "K", "kept")
    async with started(tmp_path) as (_, vault):
        assert await vault.get_value(alice, "K") == "kept"
