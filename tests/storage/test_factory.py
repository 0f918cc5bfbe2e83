"""Choosing a backend from settings."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from flowrunner.config import Settings
from flowrunner.errors import StorageError
from flowrunner.storage import create_store, open_store
from flowrunner.storage.memory import MemoryStore
from flowrunner.storage.sql import SqlStore


@dataclass
class _Settings:
    storage: str
    data_dir: Path
    database_url: str | None = None
    database_direct: bool = True


async def test_memory_is_selected_by_name(tmp_path: Path) -> None:
    store = await open_store(Settings(storage="memory", data_dir=tmp_path))
    assert isinstance(store, MemoryStore)
    await store.close()


async def test_default_sqlite_file_is_created_and_migrated_in_the_data_dir(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    store = await open_store(Settings(storage="sqlite", data_dir=data_dir))
    try:
        assert isinstance(store, SqlStore)
        assert (data_dir / "flowrunner.db").exists()
        account = await store.accounts.create("ada", "h")
        assert (await store.accounts.get(account.id)).username == "ada"
    finally:
        await store.close()


def test_explicit_database_url_wins(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    store = create_store(_Settings("sqlite", tmp_path, url))
    assert isinstance(store, SqlStore)
    assert store.db.url.database == str(tmp_path / "elsewhere.db")


def test_the_sql_hot_path_is_on_unless_settings_turn_it_off(tmp_path: Path) -> None:
    sqlite_url = f"sqlite:///{tmp_path / 'hot.db'}"
    postgres_url = "postgresql://nobody@127.0.0.1:1/none"  # not connected to
    assert isinstance(on := create_store(_Settings("sqlite", tmp_path, sqlite_url)), SqlStore)
    assert on.db.direct is not None
    off = create_store(_Settings("sqlite", tmp_path, sqlite_url, database_direct=False))
    assert isinstance(off, SqlStore)
    assert off.db.direct is None
    assert isinstance(pg := create_store(_Settings("postgres", tmp_path, postgres_url)), SqlStore)
    assert pg.db.direct_pg is not None
    pg_off = create_store(_Settings("postgres", tmp_path, postgres_url, database_direct=False))
    assert isinstance(pg_off, SqlStore)
    assert pg_off.db.direct_pg is None
    env = Settings.model_validate({"database_direct": "false"})
    assert env.database_direct is False


def test_postgres_without_url_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="FLOWRUNNER_DATABASE_URL"):
        create_store(_Settings("postgres", tmp_path))


def test_unknown_backend_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="unknown storage backend"):
        create_store(_Settings("cassandra", tmp_path))
