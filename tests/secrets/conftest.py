"""The secrets tests reuse the account tests' real stores and clock."""

from __future__ import annotations

import pytest

from flowrunner.audit import AuditLog
from flowrunner.secrets import Keyring, SecretVault
from flowrunner.storage import Account, Store
from tests.accounts.conftest import audit, clock, postgres_database, postgres_server, store

__all__ = ["audit", "clock", "postgres_database", "postgres_server", "store"]

KEY1 = Keyring.generate_key()
KEY2 = Keyring.generate_key()


@pytest.fixture
def keyring() -> Keyring:
    return Keyring([KEY1])


@pytest.fixture
def vault(store: Store, keyring: Keyring, audit: AuditLog) -> SecretVault:
    return SecretVault(store, keyring, audit)


@pytest.fixture
async def alice(store: Store) -> Account:
    return await store.accounts.create("alice", "x")


@pytest.fixture
async def bob(store: Store) -> Account:
    return await store.accounts.create("bob", "x")
