from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flowrunner.cli.app import app
from flowrunner.config import Settings
from flowrunner.errors import Conflict, InvalidInput
from flowrunner.storage import Account, open_store


def env(data_dir: Path) -> dict[str, str]:
    return {"FLOWRUNNER_DATA_DIR": str(data_dir), "FLOWRUNNER_STORAGE": "sqlite"}


def stored_account(data_dir: Path, username: str) -> Account:
    async def read() -> Account:
        store = await open_store(Settings(data_dir=data_dir))
        try:
            return await store.accounts.get_by_username(username)
        finally:
            await store.close()

    return asyncio.run(read())


def test_create_admin_prompts_for_the_password_twice(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["admin", "accounts", "create", "root", "--admin"], input="pass-word-1\npass-word-1\n",
        env=env(tmp_path),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "created admin account root" in result.output
    account = stored_account(tmp_path, "root")
    assert account.is_admin
    assert account.password_hash.startswith("$argon2id$")


def test_create_reads_the_password_from_stdin_for_scripts(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["admin", "accounts", "create", "bot", "--password-stdin"], input="pass-word-2\n",
        env=env(tmp_path),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert not stored_account(tmp_path, "bot").is_admin


@pytest.mark.parametrize(
    ("username", "password", "error"),
    [("root", "pass-word-1", Conflict), ("ok-name", "short", InvalidInput)],
)
def test_create_refuses_taken_names_and_weak_passwords(
    tmp_path: Path, username: str, password: str, error: type[Exception]
) -> None:
    runner = CliRunner()
    runner.invoke(app, ["admin", "accounts", "create", "root", "--password-stdin"],
                  input="pass-word-1\n", env=env(tmp_path))  # fmt: skip
    result = runner.invoke(
        app, ["admin", "accounts", "create", username, "--password-stdin"], input=f"{password}\n",
        env=env(tmp_path),
    )  # fmt: skip
    assert isinstance(result.exception, error)
