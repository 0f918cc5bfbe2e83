"""Benchmark of the data nodes: per-node time of ``store``, ``postgres`` and ``dynamodb``
against the same operation done directly, in the same run, alternating rounds.

- store: a flow of 10 ``store`` increments on a SQLite store vs 10 ``kv.increment`` calls;
- postgres: 10 ``execute`` nodes (``SELECT $1::int``) vs 10 ``fetchval`` on one asyncpg pool
  (needs FLOWRUNNER_TEST_POSTGRES_URL);
- dynamodb: 10 ``get`` nodes vs 10 ``get_item`` on one open client, against moto's server
  started here (needs the dynamodb extra and moto[server]).

Not a test: numbers depend on the machine. Run from the repository root (the DynamoDB part
starts its server from tests/): PYTHONPATH=. .venv/bin/python bench/data_nodes.py
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
import time
from collections.abc import Awaitable, Callable
from typing import Any

from flowrunner.definition import compile_flow, load_flow
from flowrunner.executions.run_kv import AccountKV
from flowrunner.nodes.database.connections import close_connections
from flowrunner.nodes.store import RUN_KV
from flowrunner.storage.sql import SqlStore

NODES = 10
ROUNDS = 60


def chain(node: dict[str, Any]) -> Any:
    nodes = {
        f"n{i}": {**node, **({"next": {"default": f"n{i + 1}"}} if i < NODES - 1 else {})}
        for i in range(NODES)
    }
    return compile_flow(load_flow(json.dumps({"metadata": {"name": "bench"}, "nodes": nodes})))


async def compare(
    name: str,
    flow: Any,
    bare: Callable[[], Awaitable[Any]],
    secrets: dict[str, str] | None = None,
    scoped: dict[Any, Any] | None = None,
) -> None:
    await flow.run({}, secrets=secrets, scoped=scoped)
    await bare()
    flow_s = bare_s = 0.0
    for _ in range(ROUNDS):
        started = time.perf_counter()
        await flow.run({}, secrets=secrets, scoped=scoped)
        flow_s += time.perf_counter() - started
        started = time.perf_counter()
        for _ in range(NODES):
            await bare()
        bare_s += time.perf_counter() - started
    per_node = flow_s / ROUNDS / NODES * 1000
    per_call = bare_s / ROUNDS / NODES * 1000
    print(
        f"{name:9} {ROUNDS / flow_s:7.1f} runs/s  node {per_node:6.2f} ms  "
        f"direct {per_call:6.2f} ms  overhead {per_node - per_call:6.2f} ms"
    )


async def bench_store() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = SqlStore(f"sqlite:///{tmp}/bench.db")
        await store.connect()
        scoped = {RUN_KV: AccountKV(store.kv, "bench")}
        try:
            flow = chain({"type": "store", "params": {"operation": "increment", "key": "n"}})
            bare = lambda: store.kv.increment("bench", "default", "m")  # noqa: E731
            await compare("store", flow, bare, scoped=scoped)
        finally:
            await store.close()


async def bench_postgres(dsn: str) -> None:
    import asyncpg

    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
    flow = chain(
        {
            "type": "postgres",
            "params": {"dsn": "${secrets.PG}", "operation": "execute",
                       "query": "SELECT $1::int AS n", "args": [1]},
        }
    )  # fmt: skip

    async def bare() -> Any:
        async with pool.acquire() as conn, conn.transaction():
            return await conn.fetchval("SELECT $1::int AS n", 1)

    try:
        await compare("postgres", flow, bare, {"PG": dsn})
    finally:
        await pool.close()


async def bench_dynamodb(endpoint: str) -> None:
    import aioboto3

    params = {
        "endpoint": endpoint, "table_name": "bench", "aws_access_key_id": "a",
        "aws_secret_access_key": "b", "operation": "get", "key": "k", "default": 0,
    }  # fmt: skip
    flow = chain({"type": "dynamodb", "params": params})
    session = aioboto3.Session(aws_access_key_id="a", aws_secret_access_key="b")
    await flow.run({})  # creates the table
    async with session.client("dynamodb", region_name="us-east-1", endpoint_url=endpoint) as c:

        async def bare() -> Any:
            return await c.get_item(TableName="bench", Key={"key": {"S": "k"}}, ConsistentRead=True)

        await compare("dynamodb", flow, bare)


async def main() -> None:
    await bench_store()
    dsn = os.environ.get("FLOWRUNNER_TEST_POSTGRES_URL")
    if dsn:
        await bench_postgres(dsn.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        from tests.dynamodb_server import endpoint_for_tests
    except ImportError:
        endpoint_for_tests = None  # type: ignore[assignment]
    if endpoint_for_tests is not None:
        with endpoint_for_tests() as endpoint:
            await bench_dynamodb(endpoint)
            await close_connections()
    await close_connections()


if __name__ == "__main__":
    asyncio.run(main())
