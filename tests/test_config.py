from __future__ import annotations

from pathlib import Path

import pytest

from flowrunner.config import load_settings


def test_original_storage_type_variable_is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FLOWRUNNER_STORAGE", raising=False)
    monkeypatch.setenv("FLOWRUNNER_STORAGE_TYPE", "memory")
    assert load_settings().storage == "memory"


def test_per_account_limits_default_to_half_and_never_exceed_the_whole() -> None:
    settings = load_settings(executor_concurrency=16, script_workers=2)
    assert settings.runs_per_account() == 8
    assert settings.script_workers_per_account() == 1
    assert load_settings(executor_concurrency=1).runs_per_account() == 1
    assert load_settings(executor_concurrency=4, max_runs_per_account=9).runs_per_account() == 4
    assert (
        load_settings(script_workers=8, script_worker_share=0.3).script_workers_per_account() == 2
    )
    assert (
        load_settings(script_workers=1, script_worker_share=0.1).script_workers_per_account() == 1
    )


@pytest.mark.parametrize(
    ("name", "value"),
    [("max_runs_per_account", 0), ("script_worker_share", 0), ("script_worker_share", 1.5)],
)
def test_per_account_limits_must_be_positive(name: str, value: float) -> None:
    with pytest.raises(ValueError, match=name):
        load_settings(None, **{name: value})


def test_environment_beats_file_and_overrides_beat_both(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "flowrunner.toml"
    config.write_text("[flowrunner]\nmax_steps = 5\nscript_timeout = 2.5\n")
    monkeypatch.setenv("FLOWRUNNER_MAX_STEPS", "7")
    settings = load_settings(config)
    assert settings.max_steps == 7
    assert settings.script_timeout == 2.5
    assert load_settings(config, max_steps=9).max_steps == 9


def test_embedded_default_is_a_sqlite_file_in_the_data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FLOWRUNNER_DATABASE_URL", raising=False)
    monkeypatch.delenv("FLOWRUNNER_STORAGE", raising=False)
    monkeypatch.setenv("FLOWRUNNER_DATA_DIR", str(tmp_path))
    settings = load_settings()
    assert settings.storage == "sqlite"
    assert settings.resolved_database_url() == f"sqlite+aiosqlite:///{tmp_path}/flowrunner.db"


def test_sandbox_worker_recycling_limits_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert load_settings().script_worker_max_evaluations == 100_000
    monkeypatch.setenv("FLOWRUNNER_SCRIPT_WORKER_MAX_EVALUATIONS", "0")
    monkeypatch.setenv("FLOWRUNNER_SCRIPT_WORKER_MAX_RSS_MB", "256")
    settings = load_settings()
    assert (settings.script_worker_max_evaluations, settings.script_worker_max_rss_mb) == (0, 256)
    monkeypatch.setenv("FLOWRUNNER_SCRIPT_WORKER_MAX_RSS_MB", "-1")
    with pytest.raises(ValueError, match="script_worker_max_rss_mb"):
        load_settings()
