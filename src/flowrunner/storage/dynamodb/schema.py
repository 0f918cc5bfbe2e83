"""The one table every entity lives in, and creating it on connect when it is missing.

Single-table design (see docs/storage-dynamodb.md for every item type and access pattern):

- base table ``pk``/``sk``: point reads and the per-parent ranges (an account's secrets,
  a flow's versions, an execution's events, an audit chain, a KV namespace);
- ``gsi1`` (``gsi1pk``/``gsi1sk``): newest-first listings per account, sort key
  ``created_at + id``;
- ``gsi2`` (``gsi2pk``/``gsi2sk``): listings under another parent (executions of a flow,
  deliveries of an endpoint, secrets by encryption key id);
- ``gsi3`` (``gsi3pk``/``gsi3sk``): sparse, cross-account work queues ordered by a due time
  (expired execution leases, due webhook deliveries, expiring KV entries). An item is in it
  only while it has both attributes, so finished work drops out by removing one.
"""

from __future__ import annotations

import asyncio
from typing import Any

from flowrunner.errors import StorageUnavailable

TABLE_SUFFIX = "main"
TTL_ATTRIBUTE = "ttl"
"""Epoch seconds after which DynamoDB may delete an expired KV entry on its own (reads never
rely on it: AWS deletes within days, so expiry is also checked at read time)."""

INDEXES: dict[str, tuple[str, str, dict[str, Any]]] = {
    "gsi1": ("gsi1pk", "gsi1sk", {"ProjectionType": "ALL"}),
    "gsi2": ("gsi2pk", "gsi2sk", {"ProjectionType": "ALL"}),
    # Claimers only need the keys and the status: they re-check everything with a conditional
    # write on the base item, which is the single arbiter between concurrent workers.
    "gsi3": (
        "gsi3pk",
        "gsi3sk",
        {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["status"]},
    ),
}


def table_name(prefix: str) -> str:
    return f"{prefix}-{TABLE_SUFFIX}" if prefix else TABLE_SUFFIX


def table_definition(name: str) -> dict[str, Any]:
    """The ``CreateTable`` request: on-demand billing, string keys everywhere."""
    attributes = ["pk", "sk"] + [a for pk, sk, _ in INDEXES.values() for a in (pk, sk)]
    return {
        "TableName": name,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [{"AttributeName": a, "AttributeType": "S"} for a in attributes],
        "KeySchema": [
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        "GlobalSecondaryIndexes": [
            {
                "IndexName": index,
                "KeySchema": [
                    {"AttributeName": pk, "KeyType": "HASH"},
                    {"AttributeName": sk, "KeyType": "RANGE"},
                ],
                "Projection": projection,
            }
            for index, (pk, sk, projection) in INDEXES.items()
        ],
    }


async def ensure_table(client: Any, name: str, *, wait_seconds: float = 120.0) -> bool:
    """Create the table unless it exists, then wait until it is ACTIVE; True if created.

    Safe when several processes start at once: a concurrent creator's ``ResourceInUse`` just
    means someone else won the race, and everyone waits for ACTIVE.
    """
    from botocore.exceptions import ClientError

    created = False
    try:
        description = await client.describe_table(TableName=name)
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ResourceNotFoundException":
            raise
        try:
            description = await client.create_table(**table_definition(name))
            created = True
        except ClientError as create_exc:
            if create_exc.response["Error"]["Code"] != "ResourceInUseException":
                raise
            description = await client.describe_table(TableName=name)
    status = _status(description)
    deadline = asyncio.get_running_loop().time() + wait_seconds
    while status != "ACTIVE":
        if asyncio.get_running_loop().time() > deadline:
            raise StorageUnavailable(f"DynamoDB table {name} is still {status}", table=name)
        await asyncio.sleep(1.0)
        status = _status(await client.describe_table(TableName=name))
    if created:
        await client.update_time_to_live(
            TableName=name,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE},
        )
    return created


def _status(description: dict[str, Any]) -> str:
    table = description.get("Table") or description.get("TableDescription") or {}
    return str(table.get("TableStatus", "ACTIVE"))
