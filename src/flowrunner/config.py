"""Settings, read from ``FLOWRUNNER_*`` environment variables (and an optional TOML file).

Names follow the original flowrunner where it had one (``FLOWRUNNER_STORAGE_TYPE`` is accepted
as an alias of ``FLOWRUNNER_STORAGE``).
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

StorageKind = Literal["sqlite", "postgres", "dynamodb", "memory"]


def default_data_dir() -> Path:
    """Where the embedded default keeps its database and keys (XDG data dir on Unix)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "flowrunner"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="FLOWRUNNER_", extra="ignore", populate_by_name=True
    )

    data_dir: Path = Field(default_factory=default_data_dir)
    storage: StorageKind = Field(
        default="sqlite",
        validation_alias=AliasChoices("FLOWRUNNER_STORAGE", "FLOWRUNNER_STORAGE_TYPE"),
    )
    database_url: str | None = None

    dynamodb_endpoint: str | None = None
    dynamodb_region: str = "us-east-1"
    dynamodb_table_prefix: str = "flowrunner"

    # JavaScript sandbox limits, always on; a node may lower or raise its own timeout.
    script_timeout: float = 1.0
    script_memory_mb: int = 64
    script_workers: int = 2

    # Node visits per run before it is failed as an endless loop.
    max_steps: int = 10_000

    def sqlite_url(self) -> str:
        return f"sqlite+aiosqlite:///{self.data_dir / 'flowrunner.db'}"

    def resolved_database_url(self) -> str | None:
        """The SQL URL to use: the explicit one, else the embedded SQLite file."""
        if self.database_url:
            return self.database_url
        if self.storage == "sqlite":
            return self.sqlite_url()
        return None


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Settings from the environment, a TOML file under ``[flowrunner]`` and explicit overrides.

    Precedence: overrides > environment > file > defaults.
    """
    file_values: dict[str, Any] = {}
    path = config_file or (
        Path(os.environ["FLOWRUNNER_CONFIG"]) if "FLOWRUNNER_CONFIG" in os.environ else None
    )
    if path is not None:
        with path.open("rb") as fh:
            file_values = dict(tomllib.load(fh).get("flowrunner", {}))
    env_keys = {
        name for name in Settings.model_fields if f"FLOWRUNNER_{name.upper()}" in os.environ
    }
    merged = {k: v for k, v in file_values.items() if k not in env_keys}
    merged.update(overrides)
    return Settings(**merged)
