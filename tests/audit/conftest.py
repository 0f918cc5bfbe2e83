"""The audit tests reuse the account tests' real stores and clock."""

from __future__ import annotations

from tests.accounts.conftest import audit, clock, postgres_database, postgres_server, store

__all__ = ["audit", "clock", "postgres_database", "postgres_server", "store"]
