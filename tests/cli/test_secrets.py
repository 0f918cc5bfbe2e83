from __future__ import annotations

import asyncio
from pathlib import Path

from pydantic import SecretStr
from typer.testing import CliRunner

from flowrunner.audit import AuditLog
from flowrunner.cli.app import app
from flowrunner.config import Settings
from flowrunner.errors import VaultError
from flowrunner.secrets import Keyring, SecretVault, key_id
from flowrunner.storage import open_store

KEY1 = Keyring.generate_key()
KEY2 = Keyring.generate_key()


def seed(data_dir: Path) -> None:
    async def write() -> None:
        settings = Settings(data_dir=data_dir, secret_keys=SecretStr(KEY1))
        store = await open_store(settings)
        try:
            account = await store.accounts.create("alice", "x")
            vault = SecretVault(store, Keyring.from_settings(settings), AuditLog(store))
            await vault.put(account, "A", "value-a")
            await vault.put(account, "B", {"user": "u", "password": "p"})
        finally:
            await store.close()

    asyncio.run(write())


def env(data_dir: Path, keys: str) -> dict[str, str]:
    return {"FLOWRUNNER_DATA_DIR": str(data_dir), "FLOWRUNNER_SECRET_KEYS": keys}


def test_rotate_key_re_encrypts_under_the_first_key_and_names_the_old_ones(
    tmp_path: Path,
) -> None:
    seed(tmp_path)
    result = CliRunner().invoke(app, ["secrets", "rotate-key"], env=env(tmp_path, f"{KEY2},{KEY1}"))
    assert result.exit_code == 0, result.output
    assert f"re-encrypted 2 secret(s) under key id {key_id(KEY2)}" in result.output
    assert key_id(KEY1) in result.output


def test_rotate_key_without_the_old_key_fails_naming_it(tmp_path: Path) -> None:
    seed(tmp_path)
    result = CliRunner().invoke(app, ["secrets", "rotate-key"], env=env(tmp_path, KEY2))
    assert isinstance(result.exception, VaultError)
    assert key_id(KEY1) in str(result.exception)
