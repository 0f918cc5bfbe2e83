"""A run's webhook deliveries, found and deleted with the run (``ExecutionStore.delete``).

A delivery item lives in its account's partition (``DELIVERY#<id>``), where nothing finds it
by run. So each write that adds a run's outbox entries also puts one link item in the run's
own partition (``RUN#...``, sort key ``DELIVERIES#<first delivery id>``) listing the ids it
wrote: one item per write, however many deliveries (a step's transaction stays under 100
items). Deleting the run reads its links, and its partition's deletion takes them too.

DynamoDB has no transaction over a run's unbounded items, so the deliveries and their attempts
(KV items) go right after the run's item, as its events do.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from flowrunner.storage.dynamodb.accounts import account_pk
from flowrunner.storage.dynamodb.client import ConditionFailed, Table
from flowrunner.storage.dynamodb.codec import from_item
from flowrunner.storage.dynamodb.execution_items import run_pk
from flowrunner.storage.dynamodb.expr import Expr
from flowrunner.storage.dynamodb.kv import kv_pk
from flowrunner.storage.records import ATTEMPTS_NAMESPACE, FINISHED_DELIVERY, attempts_prefix

LINK = "DELIVERIES#"


def link_item(account_id: str, execution_id: str, delivery_ids: Sequence[str]) -> dict[str, Any]:
    """The link item of one write's deliveries of the run."""
    return {
        "pk": run_pk(account_id, execution_id),
        "sk": f"{LINK}{delivery_ids[0]}",
        "ids": list(delivery_ids),
    }


async def run_deliveries(table: Table, account_id: str, execution_id: str) -> list[dict[str, Any]]:
    """The run's delivery items that still exist."""
    ids: list[str] = []
    start: dict[str, Any] | None = None
    while True:
        request: dict[str, Any] = {
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :link)",
            "ExpressionAttributeValues": {
                ":pk": {"S": run_pk(account_id, execution_id)},
                ":link": {"S": LINK},
            },
            "ConsistentRead": True,
        }
        if start is not None:
            request["ExclusiveStartKey"] = start
        page = await table.query(**request)
        for item in page.get("Items", []):
            ids += from_item(item)["ids"]
        start = page.get("LastEvaluatedKey")
        if start is None:
            break
    found = []
    for delivery_id in ids:
        item = await table.get(account_pk(account_id), f"DELIVERY#{delivery_id}")
        if item is not None:
            found.append(item)
    return found


def any_pending(deliveries: Sequence[dict[str, Any]]) -> bool:
    return any(d["status"] == "pending" for d in deliveries)


async def delete_finished(
    table: Table, account_id: str, deliveries: Sequence[dict[str, Any]]
) -> None:
    """Delete those of ``deliveries`` that are finished, each with its attempts' detail; one
    pending (or gone) by now is left."""
    for delivery in deliveries:
        expr = Expr()
        try:
            await table.delete(
                account_pk(account_id),
                f"DELIVERY#{delivery['id']}",
                condition=expr.is_in("status", list(FINISHED_DELIVERY)),
                expr=expr,
            )
        except ConditionFailed:
            continue
        await _delete_attempts(table, account_id, delivery["id"])


async def _delete_attempts(table: Table, account_id: str, delivery_id: str) -> None:
    partition = kv_pk(account_id, ATTEMPTS_NAMESPACE)
    start: dict[str, Any] | None = None
    while True:
        request: dict[str, Any] = {
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :key)",
            "ExpressionAttributeValues": {
                ":pk": {"S": partition},
                ":key": {"S": f"K#{attempts_prefix(delivery_id)}"},
            },
            "ProjectionExpression": "pk, sk",
            "ConsistentRead": True,
        }
        if start is not None:
            request["ExclusiveStartKey"] = start
        page = await table.query(**request)
        for item in page.get("Items", []):
            await table.delete(item["pk"]["S"], item["sk"]["S"])
        start = page.get("LastEvaluatedKey")
        if start is None:
            return
