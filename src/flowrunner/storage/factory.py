"""Choosing and opening a store from settings: the one place that knows every backend.

``FLOWRUNNER_STORAGE`` picks the backend (``sqlite`` by default, ``postgres``, ``dynamodb``,
``memory``) and ``FLOWRUNNER_DATABASE_URL`` where it lives; ``FLOWRUNNER_DATABASE_DIRECT=false``
keeps a SQL store on SQLAlchemy alone (no plain-driver hot path). Backends are imported lazily so a
missing optional driver only matters to those who select it.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Protocol

from flowrunner.errors import StorageError
from flowrunner.storage.protocols import Store
from flowrunner.storage.records import Clock, utcnow


class StorageSettings(Protocol):
    """What the factory reads from settings (``flowrunner.config.Settings`` fits)."""

    @property
    def storage(self) -> str: ...
    @property
    def data_dir(self) -> Path: ...
    @property
    def database_url(self) -> str | None: ...
    @property
    def database_direct(self) -> bool: ...


def sql_url(settings: StorageSettings) -> str:
    """The SQL URL for ``settings``: explicit, else the embedded SQLite file in the data dir."""
    if settings.database_url:
        return settings.database_url
    if settings.storage == "postgres":
        raise StorageError(
            "FLOWRUNNER_STORAGE=postgres needs FLOWRUNNER_DATABASE_URL "
            "(e.g. postgresql://user@host:5432/flowrunner)"
        )
    return f"sqlite:///{Path(settings.data_dir).expanduser() / 'flowrunner.db'}"


def create_store(settings: StorageSettings, *, clock: Clock = utcnow) -> Store:
    """The store ``settings`` select, not yet connected."""
    kind = settings.storage
    if kind == "memory":
        from flowrunner.storage.memory import MemoryStore

        return MemoryStore(clock=clock)
    if kind in ("sqlite", "postgres"):
        from flowrunner.storage.sql import SqlStore

        url = sql_url(settings)
        if kind == "sqlite" and not settings.database_url:
            Path(settings.data_dir).expanduser().mkdir(parents=True, exist_ok=True)
        return SqlStore(url, clock=clock, direct=settings.database_direct)
    if kind == "dynamodb":
        try:
            module = importlib.import_module("flowrunner.storage.dynamodb")
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.split(".")[0] in ("aioboto3", "aiobotocore", "botocore"):
                raise StorageError(
                    "the DynamoDB backend needs aioboto3: pip install 'flowrunner[dynamodb]'"
                ) from exc
            raise
        # The DynamoDB package exposes the same hook: create_store(settings, *, clock) -> Store.
        store: Store = module.create_store(settings, clock=clock)
        return store
    raise StorageError(f"unknown storage backend {kind!r} (sqlite, postgres, dynamodb, memory)")


async def open_store(settings: StorageSettings, *, clock: Clock = utcnow) -> Store:
    """The selected store, connected (SQL stores migrate their schema on connect)."""
    store = create_store(settings, clock=clock)
    await store.connect()
    return store
