"""The ``postgres`` node against the real PostgreSQL server (FLOWRUNNER_TEST_POSTGRES_URL)."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from flowrunner.definition import compile_flow, load_flow
from flowrunner.errors import NodeFailed
from flowrunner.nodes.database.pg_pools import close_pools, pools
from tests.conftest import require_service
from tests.executions.conftest import eventually
from tests.nodes.silent_server import silent_server
from tests.storage.conftest import scratch_postgres_database

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def dsn() -> Iterator[str]:
    server = require_service("FLOWRUNNER_TEST_POSTGRES_URL", "PostgreSQL")
    for url in scratch_postgres_database(server, migrate=False):
        yield make_url(url).set(drivername="postgresql").render_as_string(False)


@pytest.fixture(autouse=True)
async def closed_pools() -> AsyncIterator[None]:
    yield
    await close_pools()


async def run(text: str, run_input: Any = None, **kwargs: Any) -> Any:
    return await compile_flow(load_flow(text)).run(run_input, **kwargs)


def node(params: dict[str, Any]) -> str:
    return "metadata: {name: pg}\nnodes:\n  db:\n    type: postgres\n    params: " + json.dumps(
        params
    )


async def test_execute_binds_args_and_returns_rows_or_counts(dsn: str) -> None:
    secrets = {"PG": dsn}
    base = {"dsn": "${secrets.PG}", "operation": "execute"}
    await run(
        node(
            {
                **base,
                "query": "CREATE TABLE people (id int, name text, born date, "
                "tags jsonb, score numeric)",
            }
        ),
        secrets=secrets,
    )
    insert = {
        **base,
        "query": "INSERT INTO people VALUES ($1, $2, $3::text::date, $4, $5), "
        "($6, $7, NULL, NULL, NULL)",
        "args": [1, "Ada'; DROP TABLE people; --", "1815-12-10", {"langs": ["en"]}, 2.5, 2, "Bob"],
    }
    assert (await run(node(insert), secrets=secrets)).output == {"rows_affected": 2}
    select = {**base, "query": "SELECT * FROM people WHERE id >= $1 ORDER BY id", "args": [1]}
    result = await run(node(select), secrets=secrets)
    assert result.output == {
        "rows": [
            {"id": 1, "name": "Ada'; DROP TABLE people; --", "born": "1815-12-10",
             "tags": {"langs": ["en"]}, "score": 2.5},
            {"id": 2, "name": "Bob", "born": None, "tags": None, "score": None},
        ],
        "row_count": 2,
    }  # fmt: skip
    # The original's key, beside shared.result.
    assert result.shared["postgres_result"] == result.output == result.shared["result"]


async def test_transaction_is_all_or_nothing(dsn: str) -> None:
    secrets = {"PG": dsn}
    base = {"dsn": "${secrets.PG}"}
    await run(
        node(
            {
                **base,
                "operation": "execute",
                "query": "CREATE TABLE acct (n int PRIMARY KEY, bal int CHECK (bal >= 0))",
            }
        ),
        secrets=secrets,
    )
    ok = await run(node({**base, "operation": "transaction", "statements": [
        {"query": "INSERT INTO acct VALUES ($1, $2)", "args": [1, 10]},
        {"query": "INSERT INTO acct VALUES ($1, $2)", "args": [2, 0]},
        {"query": "SELECT sum(bal) AS total FROM acct"},
    ]}), secrets=secrets)  # fmt: skip
    assert ok.output == {
        "results": [{"rows_affected": 1}, {"rows_affected": 1}, {"rows": [{"total": 10}],
                    "row_count": 1}]
    }  # fmt: skip
    with pytest.raises(
        NodeFailed, match=r"(?s)statements\[1\]: PostgreSQL error 23514.*nothing was"
    ):
        await run(node({**base, "operation": "transaction", "statements": [
            {"query": "UPDATE acct SET bal = bal + 5 WHERE n = 2"},
            {"query": "UPDATE acct SET bal = bal - 20 WHERE n = 1"},
        ]}), secrets=secrets)  # fmt: skip
    rows = await run(node({**base, "operation": "execute", "query": "SELECT bal FROM acct "
                           "ORDER BY n"}), secrets=secrets)  # fmt: skip
    assert rows.output["rows"] == [{"bal": 10}, {"bal": 0}]


async def test_key_value_operations_on_a_table_created_when_missing(dsn: str) -> None:
    flow = f"""\
metadata: {{name: kv}}
nodes:
  put: {{type: postgres, params: {{dsn: "{dsn}", operation: set, key: "a:1",
        value: {{n: 1, tag: x}}}}, next: {{default: put2}}}}
  put2: {{type: postgres, params: {{dsn: "{dsn}", operation: set, key: "a:2",
         value: {{n: 2, tag: y}}, ttl: 1h}}, next: {{default: nul}}}}
  nul: {{type: postgres, params: {{dsn: "{dsn}", operation: set, key: "b", value: null}},
        next: {{default: get}}}}
  get: {{type: postgres, params: {{dsn: "{dsn}", operation: get, key: "a:1"}},
        next: {{default: keys}}}}
  keys: {{type: postgres, params: {{dsn: "{dsn}", operation: list, prefix: "a:"}},
         next: {{default: q}}}}
  q: {{type: postgres, params: {{dsn: "{dsn}", operation: query, filter: {{n: {{$gte: 1}}}},
      sort: -n, limit: 1}}, next: {{default: del}}}}
  del: {{type: postgres, params: {{dsn: "{dsn}", operation: delete, key: "a:1"}},
        next: {{default: gone}}}}
  gone: {{type: postgres, params: {{dsn: "{dsn}", operation: get, key: "a:1", default: 0}},
         next: {{default: out}}}}
  out: {{type: set, params: {{values: {{get: "${{results.get}}", keys: "${{results.keys}}",
        q: "${{results.q}}", del: "${{results.del}}", gone: "${{results.gone}}"}}}}}}
"""
    result = await run(flow)
    assert result.output == {
        "get": {"n": 1, "tag": "x"},
        "keys": ["a:1", "a:2"],
        "q": [{"key": "a:2", "value": {"n": 2, "tag": "y"}}],
        "del": {"key": "a:1", "deleted": True, "success": True},
        "gone": 0,
    }
    conn = await asyncpg.connect(dsn)
    try:
        assert await conn.fetchval("SELECT count(*) FROM flowrunner_store") == 2
    finally:
        await conn.close()


async def test_host_params_with_sslmode_and_bad_credentials(dsn: str) -> None:
    url = make_url(dsn)
    base = {"host": url.host, "port": url.port or 5432, "user": url.username or "postgres",
            "dbname": url.database, "sslmode": "disable", "operation": "execute",
            "query": "SELECT current_database() AS db"}  # fmt: skip
    assert (await run(node(base))).output["rows"] == [{"db": url.database}]
    with pytest.raises(NodeFailed, match="does not exist"):
        await run(node({**base, "dbname": "no_such_db_here"}))
    with pytest.raises(NodeFailed, match=r"authentication to PostgreSQL at .* failed: role"):
        await run(node({**base, "user": "no_such_role", "password": "pw"}))


async def test_a_silent_server_times_out_connecting() -> None:
    async with silent_server() as silent:
        dsn = f"postgresql://u@127.0.0.1:{silent.port}/db"
        params = {"dsn": dsn, "operation": "execute", "query": "SELECT 1", "connect_timeout": 0.3}
        with pytest.raises(NodeFailed, match=r"cannot connect to PostgreSQL at .*: timed out"):
            await run(node(params))


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"query": "SELEC 1"}, r"PostgreSQL error 42601: syntax error"),
        ({"query": "SELECT $1::int", "args": ["x"]}, r"execute: .*invalid input for query arg"),
        ({"query": "SELECT pg_sleep(5)", "statement_timeout": "50ms"},
         r"ran longer than statement_timeout \(0.05s\)"),
        ({"query": "SELECT generate_series(1, 10)", "max_rows": 3},
         r"more than max_rows \(3\) rows"),
        ({"query": "SELECT 1", "args": "${input}"}, r"args must be a list"),
    ],
)  # fmt: skip
async def test_failures_are_clear_node_errors(
    dsn: str, params: dict[str, Any], message: str
) -> None:
    with pytest.raises(NodeFailed, match=message):
        await run(node({"dsn": dsn, "operation": "execute", **params}), "x")


async def test_refused_connection_is_a_clear_error() -> None:
    with pytest.raises(NodeFailed, match=r"cannot connect to PostgreSQL at 127.0.0.1:1"):
        await run(node({"dsn": "postgresql://u:pw@127.0.0.1:1/db", "operation": "execute",
                        "query": "SELECT 1", "connect_timeout": 5}))  # fmt: skip


async def test_cancelling_the_run_cancels_the_query(dsn: str) -> None:
    marker = f"cancel-me-{os.urandom(4).hex()}"
    sleep = {"dsn": dsn, "operation": "execute", "query": f'SELECT pg_sleep(60) AS "{marker}"'}
    task = asyncio.ensure_future(run(node(sleep)))
    conn = await asyncpg.connect(dsn)
    try:
        query = "SELECT count(*) FROM pg_stat_activity WHERE query LIKE $1 AND state = 'active'"

        async def running() -> bool:
            return bool(await conn.fetchval(query, f"%{marker}%"))

        async def stopped() -> bool:
            return not await running()

        await eventually(running, "the query never started")
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # The server stopped it: not left running for its 60 s.
        await eventually(stopped, "the query still runs on the server")
    finally:
        await conn.close()


async def test_pools_are_per_dsn_and_bounded_per_account(dsn: str) -> None:
    from flowrunner.fairness import ACCOUNT_ID
    from flowrunner.nodes.database import pg_pools

    for i in range(pg_pools.MAX_POOLS_PER_ACCOUNT + 2):
        # Distinct DSNs to the same server: application_name differs.
        token = ACCOUNT_ID.set("acct-a")
        try:
            await run(node({"dsn": f"{dsn}?application_name=fr{i}", "operation": "execute",
                            "query": "SELECT 1 AS one"}))  # fmt: skip
        finally:
            ACCOUNT_ID.reset(token)
    token = ACCOUNT_ID.set("acct-b")
    try:
        await run(node({"dsn": dsn, "operation": "execute", "query": "SELECT 1 AS one"}))
    finally:
        ACCOUNT_ID.reset(token)
    registry = pools()
    assert len(registry) == pg_pools.MAX_POOLS_PER_ACCOUNT + 1


def test_driver_messages_lose_the_password_and_the_dsn() -> None:
    from flowrunner.nodes.database.postgres import _scrub

    dsn = "postgresql://ada:p%40ss-word@db:5432/x"
    text = f"bad {dsn} and p@ss-word and p%40ss-word"
    assert _scrub(text, dsn) == "bad *** and *** and ***"


def test_wrong_params_are_named_with_their_position_when_the_flow_loads() -> None:
    from flowrunner.errors import DefinitionError

    text = (
        "metadata: {name: f}\nnodes:\n  q:\n    type: postgres\n"
        "    params:\n      dsn: postgresql://x@h/db\n      operation: execute\n"
        "      querry: SELECT 1\n      sslmode: off\n"
    )
    with pytest.raises(DefinitionError) as caught:
        load_flow(text)
    found = {(p.path, p.line) for p in caught.value.problems}
    assert ("nodes.q.params.querry", 8) in found
    assert ("nodes.q.params.sslmode", 9) in found


async def test_sslmode_applies_to_a_dsn_too(dsn: str) -> None:
    params = {"dsn": f"{dsn}?sslmode=require", "sslmode": "disable", "operation": "execute"}
    out = await run(
        node({**params, "query": "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"})
    )
    assert out.output["rows"] == [{"ssl": False}]


async def test_statement_timeout_is_the_default_or_the_nodes_own(dsn: str) -> None:
    show = {"dsn": dsn, "operation": "execute", "query": "SHOW statement_timeout"}
    assert (await run(node(show))).output["rows"] == [{"statement_timeout": "30s"}]
    own = await run(node({**show, "statement_timeout": "2m"}))
    assert own.output["rows"] == [{"statement_timeout": "2min"}]
    # SET LOCAL: the pooled connection is back to the default afterwards.
    assert (await run(node(show))).output["rows"] == [{"statement_timeout": "30s"}]


async def test_a_kv_table_dropped_behind_its_back_is_created_again(dsn: str) -> None:
    table = f"kv_{os.urandom(3).hex()}"
    put = node({"dsn": dsn, "operation": "set", "table_name": table, "key": "k", "value": 1})
    await run(put)
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f'DROP TABLE "{table}"')
    finally:
        await conn.close()
    with pytest.raises(NodeFailed, match="42P01"):  # the pool believed it existed
        await run(put)
    assert (await run(put)).output == {"key": "k", "value": 1, "success": True}
