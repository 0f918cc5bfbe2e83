"""``DynamoStore``: every entity family over one DynamoDB table and one aiobotocore client."""

from __future__ import annotations

from contextlib import AsyncExitStack
from typing import Any, Protocol

import aioboto3
from botocore.config import Config

from flowrunner.storage.dynamodb.accounts import DynamoAccounts, DynamoTokens
from flowrunner.storage.dynamodb.audit import DynamoAudit
from flowrunner.storage.dynamodb.client import Table, translated
from flowrunner.storage.dynamodb.executions import DynamoExecutions
from flowrunner.storage.dynamodb.flows import DynamoFlows
from flowrunner.storage.dynamodb.kv import DynamoKV
from flowrunner.storage.dynamodb.schema import ensure_table, table_name
from flowrunner.storage.dynamodb.secrets import DynamoSecrets
from flowrunner.storage.dynamodb.webhooks import DynamoWebhooks
from flowrunner.storage.records import Clock, utcnow

DEFAULT_REGION = "us-east-1"
DEFAULT_PREFIX = "flowrunner"


class DynamoSettings(Protocol):
    """What the backend reads from settings (``flowrunner.config.Settings`` fits):
    ``FLOWRUNNER_DYNAMODB_ENDPOINT``, ``..._REGION`` and ``..._TABLE_PREFIX``."""

    @property
    def dynamodb_endpoint(self) -> str | None: ...
    @property
    def dynamodb_region(self) -> str: ...
    @property
    def dynamodb_table_prefix(self) -> str: ...


class DynamoStore:
    """The storage contract on DynamoDB (or any server speaking its API, e.g. moto, Local).

    ``endpoint`` None means AWS itself (credentials from the usual AWS chain). The table
    ``<table_prefix>-main`` is created on ``connect`` if it is missing, so several deployments
    (or test sessions) share an AWS account by using different prefixes.
    """

    def __init__(
        self,
        *,
        endpoint: str | None = None,
        region: str = DEFAULT_REGION,
        table_prefix: str = DEFAULT_PREFIX,
        clock: Clock = utcnow,
        session: Any = None,
        create_table: bool = True,
    ) -> None:
        self.endpoint = endpoint
        self.region = region
        self.table = Table(None, table_name(table_prefix))
        self._session = session or aioboto3.Session()
        self._create_table = create_table
        self._stack: AsyncExitStack | None = None
        self.accounts = DynamoAccounts(self.table, clock)
        self.tokens = DynamoTokens(self.table, clock)
        self.flows = DynamoFlows(self.table, clock)
        self.secrets = DynamoSecrets(self.table, clock)
        self.executions = DynamoExecutions(self.table, clock)
        self.webhooks = DynamoWebhooks(self.table, clock)
        self.audit = DynamoAudit(self.table, clock)
        self.kv = DynamoKV(self.table, clock)

    async def connect(self) -> None:
        if self._stack is not None:
            return
        stack = AsyncExitStack()
        config = Config(
            retries={"max_attempts": 3, "mode": "standard"},
            connect_timeout=5,
            read_timeout=30,
            max_pool_connections=64,
        )
        try:
            with translated("connect"):
                client = await stack.enter_async_context(
                    self._session.client(
                        "dynamodb", endpoint_url=self.endpoint, region_name=self.region,
                        config=config,
                    )
                )  # fmt: skip
                if self._create_table:
                    await ensure_table(client, self.table.name)
                else:
                    await client.describe_table(TableName=self.table.name)
        except BaseException:
            await stack.aclose()
            raise
        self.table.client = client
        self._stack = stack

    async def close(self) -> None:
        stack, self._stack = self._stack, None
        self.table.client = None
        if stack is not None:
            await stack.aclose()

    async def drop_table(self) -> None:
        """Delete the table and everything in it (tests and teardown scripts only)."""
        with translated("DeleteTable"):
            await self.table.client.delete_table(TableName=self.table.name)


def create_store(settings: DynamoSettings, *, clock: Clock = utcnow) -> DynamoStore:
    """The factory hook ``flowrunner.storage.factory`` calls for ``FLOWRUNNER_STORAGE=dynamodb``."""
    return DynamoStore(
        endpoint=settings.dynamodb_endpoint,
        region=settings.dynamodb_region or DEFAULT_REGION,
        table_prefix=settings.dynamodb_table_prefix,
        clock=clock,
    )
