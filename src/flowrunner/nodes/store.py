"""The ``store`` node: a durable key-value store per account, shared by the account's runs.

It works on the key-value store of the storage layer (memory, SQLite, PostgreSQL or DynamoDB,
whichever the server uses), always scoped to the run's account: the original kept one global
store for every tenant. The account's store is the run-scoped value ``RUN_KV``
(``ctx.scoped(RUN_KV)``): the server's runner provides the run account's, ``flowrunner run``
the local one (``flowrunner.executions.run_kv``). Entries live in a ``namespace``
(``default`` unless the node names one).

Operations: those of ``kv_ops`` (get, set, delete, list, query), plus ``increment``
(``amount``, default 1; atomic; the output is the new number) and ``append`` (``value``;
atomic; the output is the new list). ``save`` and ``load`` (the original's file persistence)
do nothing: every write is already durable.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any, Protocol

from flowrunner.engine import RunScoped
from flowrunner.errors import Conflict, ExecutionError, NotFound, StorageError
from flowrunner.nodes.base import Call, DefinedNode, DefinedNodeType
from flowrunner.nodes.kv_ops import (
    KV_OPERATIONS,
    KV_PARAMS,
    KeyMissing,
    OperationError,
    key_param,
    needs,
    run_kv_operation,
)

DEFAULT_NAMESPACE = "default"
PAGE = 1000  # entries per storage read while listing
NOOPS = ("save", "load")
OPERATIONS = (*KV_OPERATIONS, "increment", "append", *NOOPS)


class Entry(Protocol):
    @property
    def key(self) -> str: ...
    @property
    def value(self) -> Any: ...
    @property
    def expires_at(self) -> datetime | None: ...


class EntryPage(Protocol):
    @property
    def items(self) -> list[Any]: ...
    @property
    def next_cursor(self) -> str | None: ...


class AccountKV(Protocol):
    """One account's key-value store (``flowrunner.storage``'s KVStore with the account bound):
    missing keys raise ``NotFound``, a value of the wrong kind for increment/append
    ``Conflict``, an unreachable store ``StorageError``."""

    async def put(
        self, namespace: str, key: str, value: Any, *, ttl: timedelta | None = None
    ) -> Entry: ...
    async def get(self, namespace: str, key: str) -> Entry: ...
    async def delete(self, namespace: str, key: str) -> bool: ...
    async def list(
        self, namespace: str, *, prefix: str = "", limit: int = PAGE, cursor: str | None = None
    ) -> EntryPage: ...
    async def increment(self, namespace: str, key: str, amount: int | float = 1) -> Entry: ...
    async def append(self, namespace: str, key: str, value: Any) -> Entry: ...


RUN_KV: RunScoped[AccountKV | None] = RunScoped("store", None)
"""The run account's key-value store, provided by whoever runs the flow: the server's runner
(the run's account) and ``flowrunner run`` (the local one); None: the node fails."""

NO_STORE = "this run has no key-value store (run it with flowrunner run or on a server)"


class _Namespace:
    """``kv_ops``'s table view of one namespace of the account's store."""

    ordered = True

    def __init__(self, kv: AccountKV, namespace: str) -> None:
        self.kv, self.namespace = kv, namespace

    async def get(self, key: str) -> Any:
        try:
            return (await self.kv.get(self.namespace, key)).value
        except NotFound:
            raise KeyMissing(key) from None

    async def set(self, key: str, value: Any, ttl: float | None) -> None:
        await self.kv.put(
            self.namespace, key, value, ttl=timedelta(seconds=ttl) if ttl is not None else None
        )

    async def delete(self, key: str) -> bool:
        return await self.kv.delete(self.namespace, key)

    async def scan(self, prefix: str) -> AsyncIterator[tuple[str, Any]]:
        cursor: str | None = None
        while True:
            page = await self.kv.list(self.namespace, prefix=prefix, limit=PAGE, cursor=cursor)
            for entry in page.items:
                yield entry.key, entry.value
            if page.next_cursor is None:
                return
            cursor = page.next_cursor


class StoreNode(DefinedNode):
    __slots__ = ()

    actions = frozenset()

    async def work(self, call: Call) -> Any:
        params = call.params
        operation = str(params.get("operation") or "get")
        if operation in NOOPS:
            # The original wrote its in-memory map to a file; here every write is durable.
            return {"success": True, "operation": operation, "durable": True}
        kv = call.ctx.scoped(RUN_KV)
        if kv is None:
            raise self._fail(NO_STORE)
        namespace = str(params.get("namespace") or DEFAULT_NAMESPACE)
        try:
            if operation == "increment":
                amount = params.get("amount", 1)
                entry = await kv.increment(namespace, key_param(params), amount)
                return entry.value
            if operation == "append":
                if "value" not in params:
                    raise OperationError("append needs 'value'")
                return (await kv.append(namespace, key_param(params), params["value"])).value
            return await run_kv_operation(_Namespace(kv, namespace), operation, params)
        except (OperationError, KeyMissing, Conflict) as exc:
            raise self._fail(f"{operation}: {exc.args[0] if exc.args else exc}") from exc
        except StorageError as exc:
            raise self._fail(f"{operation}: the store failed: {exc}") from exc

    def _fail(self, message: str) -> ExecutionError:
        return ExecutionError(f"node '{self.node_id}': {message}", node_id=self.node_id)


STORE = DefinedNodeType(
    "store",
    "A durable key-value store of the run's account: get, set (ttl), delete, list, query "
    "(filter, sort, limit), increment and append (atomic); save/load do nothing.",
    StoreNode,
    {
        "type": "object",
        "properties": {
            "operation": {"enum": list(OPERATIONS)},
            "namespace": {"type": "string", "minLength": 1, "maxLength": 255},
            **KV_PARAMS,
            "amount": {"type": "number"},
            # The original's save/load took a file; accepted and ignored.
            "path": {"type": "string"},
            "file": {"type": "string"},
        },
        "required": ["operation"],
        "additionalProperties": False,
        "allOf": [
            needs("get", "key"),
            needs("set", "key", "value"),
            needs("delete", "key"),
            needs("increment", "key"),
            needs("append", "key", "value"),
        ],
    },
)

STORE_TYPES: list[tuple[DefinedNodeType, tuple[str, ...]]] = [(STORE, ())]

__all__ = ["RUN_KV", "STORE", "STORE_TYPES", "AccountKV", "StoreNode"]
