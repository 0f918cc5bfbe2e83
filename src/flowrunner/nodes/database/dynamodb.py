"""The ``dynamodb`` node: a DynamoDB table the flow names, with credentials of its own.

Connection, per node (nothing global): ``region`` (default ``us-east-1``), ``endpoint``
(a DynamoDB-API server such as DynamoDB Local), and ``aws_access_key_id`` /
``aws_secret_access_key`` / ``aws_session_token`` (typically ``${secrets.X}``); without keys,
the usual AWS credential chain of the process.

Operations on ``table_name``:

- the original's key-value operations (``kv_ops``): ``get``, ``set`` (``ttl``), ``delete``,
  ``list``, ``query`` (``filter``/``sort``/``limit``), plus ``batch_write`` (``items:
  [{key, value, ttl}]``, ``delete_keys``) — see ``dynamo_kv``;
- DynamoDB's own: ``get_item`` (``key`` as a mapping) → ``{item}``; ``put_item`` (``item``,
  ``condition``) → ``{success}``; ``update_item`` (``key``, ``update``, ``condition``) →
  ``{attributes}``; ``delete_item`` (``key``, ``condition``) → ``{deleted, attributes}``;
  ``query`` with ``key_condition`` (``filter_expression``, ``index_name``, ``limit``,
  ``scan_forward``) → ``{items, count, last_evaluated_key}``. Expressions take ``names``
  (``#n`` → attribute) and ``values`` (``:v`` → plain JSON value).

Needs the ``dynamodb`` extra (aioboto3): ``pip install 'flowrunner[dynamodb]'``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from flowrunner.errors import ExecutionError
from flowrunner.fairness import ACCOUNT_ID
from flowrunner.nodes.base import Call, DefinedNode, DefinedNodeType
from flowrunner.nodes.database.dynamo_clients import clients
from flowrunner.nodes.database.dynamo_kv import DynamoTable
from flowrunner.nodes.database.dynamo_values import from_item, to_item
from flowrunner.nodes.kv_ops import (
    KV_OPERATIONS,
    KV_PARAMS,
    KeyMissing,
    OperationError,
    needs,
    run_kv_operation,
)

ITEM_OPERATIONS = ("get_item", "put_item", "update_item", "delete_item")
OPERATIONS = (*KV_OPERATIONS, "batch_write", *ITEM_OPERATIONS)
DEFAULT_REGION = "us-east-1"
DEFAULT_TIMEOUT = 30.0
MAX_MESSAGE = 500
INSTALL_HINT = "the dynamodb node needs aioboto3: pip install 'flowrunner[dynamodb]'"
AUTH_CODES = frozenset(
    {
        "UnrecognizedClientException",
        "InvalidSignatureException",
        "AccessDeniedException",
        "ExpiredTokenException",
        "MissingAuthenticationTokenException",
        "IncompleteSignature",
        "InvalidClientTokenId",
        "SignatureDoesNotMatch",
    }
)


class DynamoNode(DefinedNode):
    __slots__ = ()

    actions = frozenset()

    async def work(self, call: Call) -> Any:
        params = call.params
        operation = str(params.get("operation") or "get")
        try:
            import aioboto3  # noqa: F401  (the optional extra)
            from botocore.exceptions import BotoCoreError, ClientError
        except ImportError as exc:
            raise self._fail(INSTALL_HINT) from exc
        table_name = params.get("table_name")
        if not isinstance(table_name, str) or not table_name:
            raise self._fail("needs 'table_name'")
        timeout = float(params.get("timeout") or DEFAULT_TIMEOUT)
        credentials = (
            params.get("aws_access_key_id") or params.get("access_key_id"),
            params.get("aws_secret_access_key") or params.get("secret_access_key"),
            params.get("aws_session_token") or params.get("session_token"),
        )
        endpoint = str(params.get("endpoint") or params.get("endpoint_url") or "") or None
        region = str(params.get("region") or DEFAULT_REGION)
        where = f"{endpoint or 'AWS'} ({region})"
        registry = clients()
        try:
            async with registry.client(
                ACCOUNT_ID.get(), credentials, region, endpoint, timeout
            ) as client:
                known = {t for e, r, t in registry.tables if (e, r) == (endpoint, region)}
                result = await self._operate(client, operation, table_name, params, known)
                registry.tables |= {(endpoint, region, t) for t in known}
                return result
        except (OperationError, KeyMissing, ValueError) as exc:
            raise self._fail(f"{operation}: {exc.args[0] if exc.args else exc}") from exc
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code, message = error.get("Code", "Error"), error.get("Message", str(exc))
            message = " ".join(str(message).split())[:MAX_MESSAGE]  # an HTML error page
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if code in AUTH_CODES or status in (401, 403):
                if code.isdigit():  # an error body that is not DynamoDB's JSON (IAM's XML)
                    found = re.search(r"<Message>(.*?)</Message>", message)
                    message = found.group(1) if found else f"HTTP {status}"
                raise self._fail(
                    f"authentication to DynamoDB at {where} failed: {message}"
                ) from exc
            if code == "ResourceNotFoundException":
                message = f"table '{table_name}' not found at {where}"
            elif code == "ConditionalCheckFailedException":
                message = "the condition was false; nothing was written"
            raise self._fail(f"{operation}: DynamoDB {code}: {message}") from exc
        except BotoCoreError as exc:
            raise self._fail(f"cannot reach DynamoDB at {where}: {exc}") from exc

    async def _operate(
        self,
        client: Any,
        operation: str,
        table_name: str,
        params: Mapping[str, Any],
        known: set[str],
    ) -> Any:
        if operation in ITEM_OPERATIONS or (operation == "query" and "key_condition" in params):
            return await _item_operation(client, operation, table_name, params)
        table = DynamoTable(client, table_name)
        await table.ensure(known)
        if operation == "batch_write":
            return await table.batch_write(params)
        return await run_kv_operation(table, operation, params)

    def _fail(self, message: str) -> ExecutionError:
        return ExecutionError(f"node '{self.node_id}': {message}", node_id=self.node_id)


def _expression_params(params: Mapping[str, Any]) -> dict[str, Any]:
    request: dict[str, Any] = {}
    names = params.get("names")
    values = params.get("values")
    if names:
        if not isinstance(names, Mapping):
            raise OperationError("names must be a mapping of #placeholder to attribute name")
        request["ExpressionAttributeNames"] = {str(k): str(v) for k, v in names.items()}
    if values:
        if not isinstance(values, Mapping):
            raise OperationError("values must be a mapping of :placeholder to value")
        request["ExpressionAttributeValues"] = to_item(values)
    if params.get("condition"):
        request["ConditionExpression"] = str(params["condition"])
    return request


def _mapping(params: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = params.get(name)
    if not isinstance(value, Mapping) or not value:
        raise OperationError(f"needs '{name}': a mapping of attribute to value")
    return value


async def _item_operation(
    client: Any, operation: str, table: str, params: Mapping[str, Any]
) -> dict[str, Any]:
    if operation == "get_item":
        response = await client.get_item(
            TableName=table,
            Key=to_item(_mapping(params, "key")),
            ConsistentRead=bool(params.get("consistent_read", True)),
        )
        item = response.get("Item")
        return {"item": from_item(item) if item is not None else None}
    if operation == "put_item":
        await client.put_item(
            TableName=table, Item=to_item(_mapping(params, "item")), **_expression_params(params)
        )
        return {"success": True}
    if operation == "update_item":
        update = params.get("update")
        if not isinstance(update, str) or not update:
            raise OperationError("needs 'update': an UpdateExpression such as 'SET #n = :v'")
        response = await client.update_item(
            TableName=table,
            Key=to_item(_mapping(params, "key")),
            UpdateExpression=update,
            ReturnValues="ALL_NEW",
            **_expression_params(params),
        )
        return {"attributes": from_item(response.get("Attributes") or {})}
    if operation == "delete_item":
        response = await client.delete_item(
            TableName=table,
            Key=to_item(_mapping(params, "key")),
            ReturnValues="ALL_OLD",
            **_expression_params(params),
        )
        old = response.get("Attributes")
        return {"deleted": old is not None, "attributes": from_item(old) if old else None}
    # query with a key condition
    request: dict[str, Any] = {
        "TableName": table,
        "KeyConditionExpression": str(params["key_condition"]),
        "ScanIndexForward": bool(params.get("scan_forward", True)),
        **_expression_params(params),
    }
    if params.get("filter_expression"):
        request["FilterExpression"] = str(params["filter_expression"])
    if params.get("index_name"):
        request["IndexName"] = str(params["index_name"])
    if params.get("limit"):
        request["Limit"] = int(params["limit"])
    if params.get("exclusive_start_key"):
        request["ExclusiveStartKey"] = to_item(_mapping(params, "exclusive_start_key"))
    response = await client.query(**request)
    items = [from_item(i) for i in response.get("Items", [])]
    last = response.get("LastEvaluatedKey")
    return {
        "items": items,
        "count": len(items),
        "last_evaluated_key": from_item(last) if last else None,
    }


_TEXT = {"type": "string", "minLength": 1}
_KV_PARAMS = {**KV_PARAMS, "key": {"type": ["string", "number", "object"]}}

DYNAMODB = DefinedNodeType(
    "dynamodb",
    "A DynamoDB table (region, endpoint and credentials per node, from secrets): the "
    "original's key-value operations and batch_write, or get_item / put_item / update_item / "
    "delete_item / query with DynamoDB expressions.",
    DynamoNode,
    {
        "type": "object",
        "properties": {
            "operation": {"enum": list(OPERATIONS)},
            "table_name": {"type": "string", "pattern": "^[A-Za-z0-9_.-]{3,255}$"},
            "region": _TEXT,
            "endpoint": _TEXT,
            "endpoint_url": _TEXT,
            "aws_access_key_id": _TEXT,
            "aws_secret_access_key": _TEXT,
            "aws_session_token": _TEXT,
            "access_key_id": _TEXT,
            "secret_access_key": _TEXT,
            "session_token": _TEXT,
            "timeout": {"type": "number", "exclusiveMinimum": 0, "maximum": 600},
            **_KV_PARAMS,
            "items": {"type": "array"},
            "delete_keys": {"type": "array", "items": {"type": ["string", "number"]}},
            "item": {"type": "object"},
            "update": _TEXT,
            "condition": _TEXT,
            "names": {"type": "object", "additionalProperties": {"type": "string"}},
            "values": {"type": "object"},
            "key_condition": _TEXT,
            "filter_expression": _TEXT,
            "index_name": _TEXT,
            "scan_forward": {"type": "boolean"},
            "consistent_read": {"type": "boolean"},
            "exclusive_start_key": {"type": "object"},
        },
        "required": ["operation", "table_name"],
        "additionalProperties": False,
        "allOf": [
            needs("get", "key"),
            needs("set", "key", "value"),
            needs("delete", "key"),
            needs("batch_write", "items"),
            needs("get_item", "key"),
            needs("put_item", "item"),
            needs("update_item", "key", "update"),
            needs("delete_item", "key"),
        ],
    },
)
