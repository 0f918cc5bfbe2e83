"""What a store with a versioned schema (SQL) can say about it, for readiness probes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

MigrationState = Literal["current", "behind", "ahead", "unknown"]


@dataclass(frozen=True, slots=True)
class MigrationStatus:
    """``current``: the database is at this code's newest revision. ``behind``: at an older
    one (this process's writes may not fit the schema). ``ahead``: at a revision this code
    does not know, which a newer release applied (migrations only add: it still serves).
    ``unknown``: the revision history is not a plain chain, so it cannot be told cheaply."""

    state: MigrationState
    revision: str | None
    head: str | None


@runtime_checkable
class Migrations(Protocol):
    """What a store may offer besides ``Store``: the state of its schema. Stores without
    migrations (memory, DynamoDB, which creates its one table on connect) do not."""

    async def migration_status(self) -> MigrationStatus:
        """One cheap query; ``StorageError`` if the database does not answer."""
        ...
