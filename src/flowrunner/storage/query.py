"""The one query language of the key-value store, shared by every backend: top-level equality.

Kept this small on purpose: it is evaluated in Python on key-ordered batches, so it behaves
identically on SQLite, PostgreSQL, DynamoDB and memory.
"""

from __future__ import annotations

from collections.abc import Mapping

from flowrunner.storage.records import JSONValue


def matches(value: JSONValue, where: Mapping[str, JSONValue] | None) -> bool:
    """True if ``value`` is an object whose top-level fields equal every pair of ``where``."""
    if not where:
        return True
    if not isinstance(value, dict):
        return False
    return all(k in value and value[k] == v for k, v in where.items())
