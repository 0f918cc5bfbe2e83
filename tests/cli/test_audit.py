from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from flowrunner.audit import AuditLog
from flowrunner.cli.app import app
from flowrunner.cli.audit import TAMPERED_EXIT_CODE
from flowrunner.config import Settings
from flowrunner.storage import open_store


def seed(data_dir: Path, n: int) -> None:
    async def write() -> None:
        store = await open_store(Settings(data_dir=data_dir))
        try:
            for i in range(n):
                await AuditLog(store).record("token.created", account_id="a", actor_id="a",
                                             target=f"t{i}")  # fmt: skip
        finally:
            await store.close()

    asyncio.run(write())


def verify(data_dir: Path) -> tuple[int, str]:
    result = CliRunner().invoke(
        app, ["audit", "verify"], env={"FLOWRUNNER_DATA_DIR": str(data_dir)}
    )
    return result.exit_code, result.output


def test_verify_passes_on_an_untouched_log_and_prints_the_head(tmp_path: Path) -> None:
    seed(tmp_path, 3)
    code, output = verify(tmp_path)
    assert code == 0, output
    assert "audit log OK: 3 record(s) in 1 chain(s)" in output
    assert "head: seq 3 hash " in output


def test_verify_fails_with_its_own_exit_code_when_a_record_was_deleted(tmp_path: Path) -> None:
    seed(tmp_path, 3)
    with sqlite3.connect(tmp_path / "flowrunner.db") as conn:
        conn.execute("DELETE FROM audit_records WHERE seq = 2")
    code, output = verify(tmp_path)
    assert code == TAMPERED_EXIT_CODE
    assert "TAMPERED: chain 'global': record 3: expected seq 2" in output


def test_the_installed_command_exits_3_on_an_edited_record(tmp_path: Path) -> None:
    seed(tmp_path, 2)
    with sqlite3.connect(tmp_path / "flowrunner.db") as conn:
        conn.execute("UPDATE audit_records SET actor = 'someone-else' WHERE seq = 1")
    result = subprocess.run(
        [sys.executable, "-m", "flowrunner", "audit", "verify"],
        env={**os.environ, "FLOWRUNNER_DATA_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == TAMPERED_EXIT_CODE, result.stderr
    assert "record 1: content does not match its hash" in result.stderr
