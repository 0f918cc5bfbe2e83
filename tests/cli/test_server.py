"""``flowrunner db upgrade`` and ``flowrunner serve``'s options (serving itself is tested end to
end in tests/api/test_serve.py)."""

from __future__ import annotations

import gc
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from flowrunner.cli.app import app


def test_db_upgrade_creates_the_embedded_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLOWRUNNER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("FLOWRUNNER_DATABASE_URL", raising=False)
    monkeypatch.setenv("FLOWRUNNER_STORAGE", "sqlite")
    result = CliRunner().invoke(app, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert "latest schema" in result.output
    with sqlite3.connect(tmp_path / "data" / "flowrunner.db") as db:
        tables = {row[0] for row in db.execute("select name from sqlite_master")}
    assert {"flows", "flow_versions", "accounts"} <= tables


def test_db_upgrade_refuses_a_store_without_a_schema(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLOWRUNNER_STORAGE", "memory")
    result = CliRunner().invoke(app, ["db", "upgrade"])
    assert result.exit_code != 0
    assert "no schema" in result.output


def test_serve_offers_host_and_port() -> None:
    result = CliRunner().invoke(app, ["serve", "--help"], terminal_width=120)
    assert result.exit_code == 0
    assert "--host" in result.output
    assert "--port" in result.output
    assert "--workers" in result.output


def test_serve_refuses_zero_workers() -> None:
    result = CliRunner().invoke(app, ["serve", "--workers", "0"])
    assert result.exit_code == 2


def test_serve_builds_the_app_with_the_collector_paused_and_serves_with_it_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uvicorn

    import flowrunner.api

    seen: dict[str, bool] = {}
    create_app = flowrunner.api.create_app

    def creating(settings: Any) -> Any:
        seen["building"] = gc.isenabled()
        return create_app(settings)

    def running(app: Any, **options: Any) -> None:
        seen["serving"] = gc.isenabled()

    monkeypatch.setattr(flowrunner.api, "create_app", creating)
    monkeypatch.setattr(uvicorn, "run", running)
    monkeypatch.setenv("FLOWRUNNER_DATA_DIR", str(tmp_path))
    result = CliRunner().invoke(app, ["serve", "--port", "1"])
    assert result.exit_code == 0, result.output
    assert seen == {"building": False, "serving": True}


def test_worker_refuses_an_unknown_log_level(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLOWRUNNER_DATA_DIR", str(tmp_path))
    result = CliRunner().invoke(app, ["worker", "--log-level", "loud"])
    assert result.exit_code == 2
    assert "--log-level" in result.output
