"""The ``dynamodb`` node against the session's DynamoDB-API server (moto on loopback)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from typing import Any

import pytest

from flowrunner.definition import compile_flow, load_flow
from flowrunner.errors import NodeFailed
from flowrunner.nodes.database.connections import close_connections
from tests.nodes.silent_server import silent_server

pytest.importorskip("aioboto3")
pytestmark = pytest.mark.dynamodb

SECRETS = {"AWS_KEY": "AKIDEXAMPLE", "AWS_SECRET": "wJalrXUtnFEMI-secret-" + os.urandom(4).hex()}


@pytest.fixture
def table() -> str:
    return f"frnode-{os.urandom(4).hex()}"


@pytest.fixture
def conn(dynamodb_endpoint: str) -> dict[str, Any]:
    return {
        "endpoint": dynamodb_endpoint,
        "region": "eu-west-1",
        "aws_access_key_id": "${secrets.AWS_KEY}",
        "aws_secret_access_key": "${secrets.AWS_SECRET}",
    }


@pytest.fixture(autouse=True)
async def closed_clients() -> AsyncIterator[None]:
    yield
    await close_connections()


async def run(nodes: dict[str, Any], run_input: Any = None) -> Any:
    """A flow of ``nodes`` in order (each node's ``next`` is the following one)."""
    ids = list(nodes)
    spec = {
        "metadata": {"name": "ddb"},
        "nodes": {
            i: {**n, **({"next": {"default": ids[k + 1]}} if k + 1 < len(ids) else {})}
            for k, (i, n) in enumerate(nodes.items())
        },
    }
    return await compile_flow(load_flow(json.dumps(spec))).run(run_input, secrets=SECRETS)


def ddb(conn: dict[str, Any], table: str, **params: Any) -> dict[str, Any]:
    return {"type": "dynamodb", "params": {**conn, "table_name": table, **params}}


async def test_key_value_operations_create_the_table_and_match_the_store_shapes(
    conn: dict[str, Any], table: str
) -> None:
    result = await run(
        {
            "a": ddb(conn, table, operation="set", key="u:1", value={"n": 1, "x": [1.5, None]}),
            "b": ddb(conn, table, operation="set", key="u:2", value={"n": 2}, ttl="1h"),
            "c": ddb(conn, table, operation="batch_write", items=[
                {"key": "u:3", "value": {"n": 3}}, {"key": "o:1", "value": "order"}]),
            "get": ddb(conn, table, operation="get", key="u:1"),
            "keys": ddb(conn, table, operation="list", prefix="u:", limit=2),
            "q": ddb(conn, table, operation="query", filter={"n": {"$in": [2, 3]}}, sort="-n"),
            "del": ddb(conn, table, operation="delete", key="u:1"),
            "gone": ddb(conn, table, operation="get", key="u:1", default="none"),
            "out": {"type": "set", "params": {"values": {
                "get": "${results.get}", "keys": "${results.keys}", "q": "${results.q}",
                "del": "${results.del}", "gone": "${results.gone}", "batch": "${results.c}",
                "compat": "${shared.dynamodb_result}"}}},
        }
    )  # fmt: skip
    assert result.output == {
        "get": {"n": 1, "x": [1.5, None]},
        "keys": ["u:1", "u:2"],
        "q": [{"key": "u:3", "value": {"n": 3}}, {"key": "u:2", "value": {"n": 2}}],
        "del": {"key": "u:1", "deleted": True, "success": True},
        "gone": "none",
        "batch": {"written": 2, "deleted": 0, "success": True},
        "compat": "none",
    }


async def test_conditional_put_failure_and_update(conn: dict[str, Any], table: str) -> None:
    await run({"make": ddb(conn, table, operation="list")})
    put = ddb(conn, table, operation="put_item", item={"key": "k1", "count": 1})
    await run({"put": put})
    dup = ddb(conn, table, operation="put_item", item={"key": "k1"},
              condition="attribute_not_exists(#k)", names={"#k": "key"})  # fmt: skip
    with pytest.raises(NodeFailed, match="ConditionalCheckFailedException: the condition was"):
        await run({"dup": dup})
    result = await run(
        {
            "up": ddb(conn, table, operation="update_item", key={"key": "k1"},
                      update="SET #c = #c + :one", names={"#c": "count"}, values={":one": 1}),
            "get": ddb(conn, table, operation="get_item", key={"key": "k1"}),
            "q": ddb(conn, table, operation="query", key_condition="#k = :k",
                     names={"#k": "key"}, values={":k": "k1"}),
            "del": ddb(conn, table, operation="delete_item", key={"key": "k1"}),
            "out": {"type": "set", "params": {"values": {"up": "${results.up}",
                    "get": "${results.get}", "q": "${results.q}", "del": "${results.del}"}}},
        }
    )  # fmt: skip
    assert result.output == {
        "up": {"attributes": {"key": "k1", "count": 2}},
        "get": {"item": {"key": "k1", "count": 2}},
        "q": {"items": [{"key": "k1", "count": 2}], "count": 1, "last_evaluated_key": None},
        "del": {"deleted": True, "attributes": {"key": "k1", "count": 2}},
    }


async def test_a_missing_table_and_a_refused_endpoint_are_clear_errors(
    conn: dict[str, Any], table: str
) -> None:
    with pytest.raises(NodeFailed, match=f"table '{table}' not found at http://127"):
        await run({"g": ddb(conn, table, operation="get_item", key={"key": "x"})})
    refused = {**conn, "endpoint": "http://127.0.0.1:1", "timeout": 2}
    with pytest.raises(NodeFailed, match=r"cannot reach DynamoDB at http://127.0.0.1:1"):
        await run({"g": ddb(refused, table, operation="get", key="x")})


async def test_a_missing_key_is_a_clear_error(conn: dict[str, Any], table: str) -> None:
    with pytest.raises(NodeFailed, match="get: key 'nope' not found"):
        await run({"g": ddb(conn, table, operation="get", key="nope")})


async def test_without_aioboto3_the_node_says_how_to_install_it(
    conn: dict[str, Any], table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "aioboto3", None)
    with pytest.raises(NodeFailed, match=r"pip install 'flowrunner\[dynamodb\]'"):
        await run({"g": ddb(conn, table, operation="get", key="x")})


async def test_a_silent_endpoint_times_out_and_a_cancel_stops_the_request(
    conn: dict[str, Any], table: str
) -> None:
    async with silent_server() as silent:
        slow = {**conn, "endpoint": f"http://127.0.0.1:{silent.port}", "timeout": 0.3}
        with pytest.raises(
            NodeFailed, match=r"cannot reach DynamoDB at http://127\.0\.0\.1:.*timeout"
        ):
            await run({"g": ddb(slow, table, operation="get", key="x")})
    async with silent_server() as silent:
        hanging = {**conn, "endpoint": f"http://127.0.0.1:{silent.port}", "timeout": 600}
        task = asyncio.ensure_future(run({"g": ddb(hanging, table, operation="get", key="x")}))
        await silent.connected.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_clients_are_reused_and_bounded_per_account(conn: dict[str, Any], table: str) -> None:
    from flowrunner.fairness import ACCOUNT_ID
    from flowrunner.nodes.database import dynamo_clients

    registry = dynamo_clients.clients()
    regions = ["eu-west-1", "eu-west-2", "eu-west-3", "eu-central-1", "us-east-2", "us-west-2"]
    for account, count in (("acct-a", 6), ("acct-b", 1)):
        token = ACCOUNT_ID.set(account)
        try:
            for region in regions[:count]:
                node = ddb({**conn, "region": region}, table, operation="list")
                await run({"l": node})
                await run({"l": node})  # the same client again
        finally:
            ACCOUNT_ID.reset(token)
    assert len(registry) == dynamo_clients.MAX_PER_ACCOUNT + 1


def test_wrong_params_are_named_with_their_position_when_the_flow_loads() -> None:
    from flowrunner.errors import DefinitionError

    text = (
        "metadata: {name: f}\nnodes:\n  d:\n    type: dynamodb\n"
        "    params:\n      table_name: t\n      operation: put_itm\n"
    )
    with pytest.raises(DefinitionError) as caught:
        load_flow(text)
    assert ("nodes.d.params.operation", 7) in {(p.path, p.line) for p in caught.value.problems}


async def test_refused_credentials_are_an_authentication_error(
    table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.dynamodb_server import moto_server

    # moto checks credentials when told to (IAM-style, like AWS): none are known to it.
    monkeypatch.setenv("INITIAL_NO_AUTH_ACTION_COUNT", "0")
    with moto_server() as endpoint:
        params = {"endpoint": endpoint, "aws_access_key_id": "AKIAUNKNOWN000000000",
                  "aws_secret_access_key": "${secrets.AWS_SECRET}"}  # fmt: skip
        with pytest.raises(NodeFailed) as caught:
            await run({"g": ddb(params, table, operation="get", key="x")})
    message = str(caught.value)
    assert f"authentication to DynamoDB at {endpoint} (us-east-1) failed" in message
    assert "security token included in the request is invalid" in message
    assert SECRETS["AWS_SECRET"] not in message


async def test_batch_write_puts_and_deletes_in_requests_of_25(
    conn: dict[str, Any], table: str
) -> None:
    items = [{"key": f"k{i:03d}", "value": i} for i in range(60)]
    result = await run(
        {
            "put": ddb(conn, table, operation="batch_write", items=items),
            "drop": ddb(conn, table, operation="batch_write", items=[{"key": "new", "value": 1}],
                        delete_keys=[f"k{i:03d}" for i in range(50)]),
            "keys": ddb(conn, table, operation="list"),
        }
    )  # fmt: skip
    assert result.output == [*(f"k{i:03d}" for i in range(50, 60)), "new"]
    assert result.results["put"] == {"written": 60, "deleted": 0, "success": True}
    assert result.results["drop"] == {"written": 1, "deleted": 50, "success": True}
