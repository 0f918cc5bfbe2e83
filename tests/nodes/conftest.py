"""The storage suite's ``store`` fixture (every backend) for the nodes that use the store."""

from tests.storage.conftest import (  # noqa: F401  (fixtures, used by name)
    account,
    clock,
    other,
    postgres_database,
    postgres_server,
    store,
)
