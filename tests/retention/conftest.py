"""The pruner runs on every storage backend: the conformance suite's fixtures."""

from tests.storage.conftest import (  # noqa: F401 (fixtures)
    account,
    clock,
    other,
    postgres_database,
    postgres_server,
    store,
)
