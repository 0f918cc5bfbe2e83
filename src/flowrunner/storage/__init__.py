"""Flowrunner's storage layer: the contract (Protocols + records) and backend selection.

Services depend on the Protocols in ``protocols`` and the records in ``records`` only; which
backend sits behind them is decided once, by ``open_store(settings)``.
"""

from flowrunner.storage.chain import ChainCheck, verify_chain
from flowrunner.storage.factory import StorageSettings, create_store, open_store
from flowrunner.storage.pagination import InvalidCursor
from flowrunner.storage.protocols import (
    AccountStore,
    AuditStore,
    EndNotices,
    ExecutionStore,
    FlowStore,
    KVStore,
    SecretStore,
    Store,
    TokenStore,
    WebhookStore,
)
from flowrunner.storage.records import (
    Account,
    ApiToken,
    AuditChain,
    AuditRecord,
    Checkpoint,
    Clock,
    Execution,
    ExecutionEvent,
    ExecutionStatus,
    Flow,
    FlowVersion,
    KVEntry,
    NewAuditEntry,
    NewCheckpoint,
    NewDelivery,
    NewEvent,
    Page,
    Secret,
    WebhookDelivery,
    WebhookEndpoint,
)


async def upgrade(url: str) -> None:
    """Migrate the SQL database at ``url`` to the latest schema (``flowrunner db upgrade``)."""
    from flowrunner.storage.sql.migrate import upgrade as sql_upgrade

    await sql_upgrade(url)


__all__ = [
    "Account",
    "AccountStore",
    "ApiToken",
    "AuditChain",
    "AuditRecord",
    "AuditStore",
    "ChainCheck",
    "Checkpoint",
    "Clock",
    "EndNotices",
    "Execution",
    "ExecutionEvent",
    "ExecutionStatus",
    "ExecutionStore",
    "Flow",
    "FlowStore",
    "FlowVersion",
    "InvalidCursor",
    "KVEntry",
    "KVStore",
    "NewAuditEntry",
    "NewCheckpoint",
    "NewDelivery",
    "NewEvent",
    "Page",
    "Secret",
    "SecretStore",
    "StorageSettings",
    "Store",
    "TokenStore",
    "WebhookDelivery",
    "WebhookEndpoint",
    "WebhookStore",
    "create_store",
    "open_store",
    "upgrade",
    "verify_chain",
]
