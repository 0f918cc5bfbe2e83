"""The original's key-value operations of the ``dynamodb`` node, on a table of its own.

The table has the string hash key ``key``; an entry is ``{key, value, ttl?}`` with the value
stored as a native DynamoDB value (a map for an object) and ``ttl`` in epoch seconds, the
attribute DynamoDB's own TTL deletes by (enable it on the table to reclaim space; expired
entries are invisible to every operation either way). A missing table is created
(on-demand billing).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

from flowrunner.nodes.database.dynamo_values import from_attr, to_attr
from flowrunner.nodes.kv_ops import KeyMissing, OperationError, key_param, ttl_param

BATCH = 25  # BatchWriteItem's own limit per request
MAX_BATCH_ITEMS = 1000
BATCH_ATTEMPTS = 5


def _live(item: Mapping[str, Any]) -> bool:
    ttl = item.get("ttl")
    return ttl is None or "N" not in ttl or float(ttl["N"]) > time.time()


class DynamoTable:
    """``kv_ops.KVTable`` on one DynamoDB table."""

    ordered = False  # a table Scan has no order

    def __init__(self, client: Any, name: str) -> None:
        self._c, self.name = client, name

    async def ensure(self, known: set[str]) -> None:
        """Create the table when missing; ``known`` remembers tables seen already."""
        if self.name in known:
            return
        try:
            await self._c.describe_table(TableName=self.name)
        except self._c.exceptions.ResourceNotFoundException:
            # ResourceInUse: created by a concurrent run meanwhile.
            with contextlib.suppress(self._c.exceptions.ResourceInUseException):
                await self._c.create_table(
                    TableName=self.name,
                    AttributeDefinitions=[{"AttributeName": "key", "AttributeType": "S"}],
                    KeySchema=[{"AttributeName": "key", "KeyType": "HASH"}],
                    BillingMode="PAY_PER_REQUEST",
                )
            await self._c.get_waiter("table_exists").wait(
                TableName=self.name, WaiterConfig={"Delay": 1, "MaxAttempts": 60}
            )
        known.add(self.name)

    async def get(self, key: str) -> Any:
        response = await self._c.get_item(
            TableName=self.name, Key={"key": {"S": key}}, ConsistentRead=True
        )
        item = response.get("Item")
        if item is None or not _live(item):
            raise KeyMissing(key)
        return from_attr(item["value"]) if "value" in item else None

    def _item(self, key: str, value: Any, ttl: float | None) -> dict[str, Any]:
        item = {"key": {"S": key}, "value": to_attr(value)}
        if ttl is not None:
            item["ttl"] = {"N": str(int(time.time() + ttl) + 1)}
        return item

    async def set(self, key: str, value: Any, ttl: float | None) -> None:
        await self._c.put_item(TableName=self.name, Item=self._item(key, value, ttl))

    async def delete(self, key: str) -> bool:
        response = await self._c.delete_item(
            TableName=self.name, Key={"key": {"S": key}}, ReturnValues="ALL_OLD"
        )
        old = response.get("Attributes")
        return old is not None and _live(old)

    async def scan(self, prefix: str) -> AsyncIterator[tuple[str, Any]]:
        request: dict[str, Any] = {"TableName": self.name, "ConsistentRead": True}
        if prefix:
            request |= {
                "FilterExpression": "begins_with(#k, :p)",
                "ExpressionAttributeNames": {"#k": "key"},
                "ExpressionAttributeValues": {":p": {"S": prefix}},
            }
        while True:
            response = await self._c.scan(**request)
            for item in response.get("Items", []):
                if _live(item):
                    yield item["key"]["S"], from_attr(item["value"]) if "value" in item else None
            if "LastEvaluatedKey" not in response:
                return
            request["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    async def batch_write(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """``items: [{key, value, ttl?}]`` written and ``delete_keys: [key]`` deleted, in
        requests of 25, unprocessed ones retried."""
        items = params.get("items") or []
        deletes = params.get("delete_keys") or []
        if not isinstance(items, list) or not isinstance(deletes, list):
            raise OperationError("items and delete_keys must be lists")
        if not items and not deletes:
            raise OperationError("batch_write needs 'items' (or 'delete_keys')")
        if len(items) + len(deletes) > MAX_BATCH_ITEMS:
            raise OperationError(f"at most {MAX_BATCH_ITEMS} items per batch_write")
        requests: list[dict[str, Any]] = []
        for index, entry in enumerate(items):
            if not isinstance(entry, Mapping) or "value" not in entry:
                raise OperationError(f"items[{index}] must be a mapping with key and value")
            key = key_param(entry)
            item = self._item(key, entry["value"], ttl_param(entry))
            requests.append({"PutRequest": {"Item": item}})
        for key in deletes:
            requests.append({"DeleteRequest": {"Key": {"key": {"S": key_param({"key": key})}}}})
        for start in range(0, len(requests), BATCH):
            pending = {self.name: requests[start : start + BATCH]}
            for _ in range(BATCH_ATTEMPTS):
                response = await self._c.batch_write_item(RequestItems=pending)
                pending = response.get("UnprocessedItems") or {}
                if not pending:
                    break
            else:
                raise OperationError("DynamoDB left items unprocessed after retries (throttled)")
        return {"written": len(items), "deleted": len(deletes), "success": True}
