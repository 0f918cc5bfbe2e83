"""The table handle every entity module uses, and the one place botocore errors are translated.

Entity modules pass plain Python values; this module encodes them, calls the low-level
aiobotocore client and turns its failures into the storage error tree:

- a failed condition becomes ``ConditionFailed`` / ``TransactionCanceled`` (internal
  ``Conflict`` subclasses the caller refines into ``NotFound`` or ``Conflict``);
- throttling, server errors, a missing table, bad credentials and network failures become
  ``StorageUnavailable``; anything else is a ``StorageError`` (a bug, e.g. an item over 400 KB).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from flowrunner.errors import Conflict, StorageError, StorageUnavailable
from flowrunner.storage.dynamodb.codec import Item, encode, from_item, to_item
from flowrunner.storage.dynamodb.expr import Expr

UNAVAILABLE_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "InternalServerError",
        "ServiceUnavailable",
        "ResourceNotFoundException",
        "LimitExceededException",
        "UnrecognizedClientException",
        "InvalidSignatureException",
        "AccessDeniedException",
        "ExpiredTokenException",
        "TransactionInProgressException",
    }
)
THROTTLED_REASONS = frozenset({"ThrottlingError", "ProvisionedThroughputExceeded"})
TX_RETRIES = 8


class ConditionFailed(Conflict):
    """A conditional write's condition was false (internal: callers say what it means)."""


class TransactionCanceled(Conflict):
    """A transaction was cancelled; ``reasons[i]`` is the code for action ``i``
    (``"None"``, ``"ConditionalCheckFailed"``, ``"TransactionConflict"``...)."""

    def __init__(self, reasons: Sequence[str]) -> None:
        super().__init__("DynamoDB transaction cancelled: " + ", ".join(reasons))
        self.reasons = list(reasons)

    def failed(self, index: int) -> bool:
        return index < len(self.reasons) and self.reasons[index] == "ConditionalCheckFailed"


@contextmanager
def translated(operation: str) -> Iterator[None]:
    try:
        yield
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        message = str(exc.response.get("Error", {}).get("Message", ""))
        if code == "ConditionalCheckFailedException":
            raise ConditionFailed("condition failed", operation=operation) from exc
        if code == "TransactionCanceledException":
            reasons = [
                str(r.get("Code", "None")) for r in exc.response.get("CancellationReasons", [])
            ]
            raise TransactionCanceled(reasons) from exc
        if code in UNAVAILABLE_CODES:
            raise StorageUnavailable(
                f"DynamoDB {operation} failed: {code}: {message}", operation=operation
            ) from exc
        raise StorageError(f"DynamoDB {operation} failed: {code}: {message}") from exc
    except BotoCoreError as exc:
        raise StorageUnavailable(f"DynamoDB is unreachable: {exc}", operation=operation) from exc


def _placeholders(expr: Expr | None) -> dict[str, Any]:
    if expr is None:
        return {}
    out: dict[str, Any] = {}
    if expr.names:
        out["ExpressionAttributeNames"] = dict(expr.names)
    if expr.values:
        out["ExpressionAttributeValues"] = {k: encode(v) for k, v in expr.values.items()}
    return out


class Table:
    """One DynamoDB table behind the low-level client, speaking plain Python values."""

    def __init__(self, client: Any, name: str) -> None:
        self._client = client
        self.name = name

    @property
    def client(self) -> Any:
        if self._client is None:
            raise StorageUnavailable("the DynamoDB store is not connected (call connect())")
        return self._client

    @client.setter
    def client(self, client: Any) -> None:
        self._client = client

    @staticmethod
    def key(pk: str, sk: str) -> Item:
        return {"pk": {"S": pk}, "sk": {"S": sk}}

    async def get(self, pk: str, sk: str) -> dict[str, Any] | None:
        """The item, strongly consistent (every read after a write must see it)."""
        with translated("GetItem"):
            response = await self.client.get_item(
                TableName=self.name, Key=self.key(pk, sk), ConsistentRead=True
            )
        item = response.get("Item")
        return from_item(item) if item else None

    async def put(
        self, fields: Mapping[str, Any], *, condition: str | None = None, expr: Expr | None = None
    ) -> None:
        with translated("PutItem"):
            await self.client.put_item(**self.put_request(fields, condition, expr))

    async def update(
        self, pk: str, sk: str, expr: Expr, *, condition: str | None = None
    ) -> dict[str, Any]:
        """Apply ``expr.update`` and return the whole item as it is afterwards."""
        request = self.update_request(pk, sk, expr, condition)
        with translated("UpdateItem"):
            response = await self.client.update_item(**request, ReturnValues="ALL_NEW")
        return from_item(response.get("Attributes", {}))

    async def delete(
        self, pk: str, sk: str, *, condition: str | None = None, expr: Expr | None = None
    ) -> dict[str, Any] | None:
        """Delete; returns the item as it was (None if there was none)."""
        request: dict[str, Any] = {"TableName": self.name, "Key": self.key(pk, sk)}
        if condition:
            request["ConditionExpression"] = condition
        with translated("DeleteItem"):
            response = await self.client.delete_item(
                **request, **_placeholders(expr), ReturnValues="ALL_OLD"
            )
        old = response.get("Attributes")
        return from_item(old) if old else None

    async def query(self, **request: Any) -> dict[str, Any]:
        with translated("Query"):
            response: dict[str, Any] = await self.client.query(TableName=self.name, **request)
        return response

    async def scan(self, **request: Any) -> dict[str, Any]:
        """One page of a full-table scan (for rare whole-store reads such as audit checks)."""
        with translated("Scan"):
            response: dict[str, Any] = await self.client.scan(TableName=self.name, **request)
        return response

    async def transact(self, actions: Sequence[dict[str, Any]]) -> None:
        """All ``actions`` or none. A failed condition raises ``TransactionCanceled``; pure
        contention (``TransactionConflict``) is retried with jitter; throttling is
        ``StorageUnavailable`` and any other cancellation (e.g. an item over 400 KB) a
        ``StorageError``."""
        for attempt in range(TX_RETRIES):
            try:
                with translated("TransactWriteItems"):
                    await self.client.transact_write_items(TransactItems=list(actions))
                return
            except TransactionCanceled as exc:
                other = {r for r in exc.reasons if r not in ("None", "TransactionConflict")}
                if "ConditionalCheckFailed" in other:
                    raise
                if other & THROTTLED_REASONS:
                    raise StorageUnavailable(str(exc), operation="TransactWriteItems") from exc
                if other:
                    raise StorageError(str(exc), reasons=exc.reasons) from exc
                if attempt == TX_RETRIES - 1:
                    raise StorageUnavailable(
                        "DynamoDB transaction kept conflicting", operation="TransactWriteItems"
                    ) from exc
                await asyncio.sleep(random.uniform(0, 0.005 * 2**attempt))

    # --- requests, and the same as transaction actions ------------------------------------

    def put_request(
        self, fields: Mapping[str, Any], condition: str | None = None, expr: Expr | None = None
    ) -> dict[str, Any]:
        request: dict[str, Any] = {"TableName": self.name, "Item": to_item(fields)}
        if condition:
            request["ConditionExpression"] = condition
        return {**request, **_placeholders(expr)}

    def update_request(
        self, pk: str, sk: str, expr: Expr, condition: str | None = None
    ) -> dict[str, Any]:
        request: dict[str, Any] = {
            "TableName": self.name,
            "Key": self.key(pk, sk),
            "UpdateExpression": expr.update,
        }
        if condition:
            request["ConditionExpression"] = condition
        return {**request, **_placeholders(expr)}

    def tx_put(
        self, fields: Mapping[str, Any], condition: str | None = None, expr: Expr | None = None
    ) -> dict[str, Any]:
        return {"Put": self.put_request(fields, condition, expr)}

    def tx_update(
        self, pk: str, sk: str, expr: Expr, condition: str | None = None
    ) -> dict[str, Any]:
        return {"Update": self.update_request(pk, sk, expr, condition)}

    def tx_check(self, pk: str, sk: str, condition: str, expr: Expr) -> dict[str, Any]:
        request = {
            "TableName": self.name,
            "Key": self.key(pk, sk),
            "ConditionExpression": condition,
        }
        return {"ConditionCheck": {**request, **_placeholders(expr)}}

    def tx_delete(self, pk: str, sk: str) -> dict[str, Any]:
        return {"Delete": {"TableName": self.name, "Key": self.key(pk, sk)}}
