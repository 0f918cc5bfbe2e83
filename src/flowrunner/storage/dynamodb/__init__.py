"""The DynamoDB backend: the storage contract on one DynamoDB table (``flowrunner[dynamodb]``).

Select it with ``FLOWRUNNER_STORAGE=dynamodb``; ``FLOWRUNNER_DYNAMODB_ENDPOINT`` (unset = AWS),
``FLOWRUNNER_DYNAMODB_REGION`` and ``FLOWRUNNER_DYNAMODB_TABLE_PREFIX`` say where. The table
design and its access patterns are described in ``docs/storage-dynamodb.md``.
"""

from __future__ import annotations

try:
    import aioboto3  # noqa: F401  (imported for the install hint below)
except ModuleNotFoundError as exc:  # pragma: no cover - depends on the environment
    from flowrunner.errors import StorageError

    raise StorageError(
        "the DynamoDB backend needs aioboto3: pip install 'flowrunner[dynamodb]'"
    ) from exc

from flowrunner.storage.dynamodb.store import DynamoSettings, DynamoStore, create_store

__all__ = ["DynamoSettings", "DynamoStore", "create_store"]
