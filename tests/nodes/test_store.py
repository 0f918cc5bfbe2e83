"""The ``store`` node on the run account's key-value store, on every storage backend."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from flowrunner.definition import compile_flow, load_flow
from flowrunner.errors import DefinitionError, NodeFailed
from flowrunner.executions.run_kv import AccountKV
from flowrunner.nodes.store import RUN_KV
from flowrunner.storage import Account, Store


async def run(text: str, run_input: Any = None, kv: AccountKV | None = None) -> Any:
    """Runs ``text`` with ``kv`` as its account's store (what the runner hands a run)."""
    flow = compile_flow(load_flow(text))
    return await flow.run(run_input, scoped={RUN_KV: kv} if kv is not None else None)


@pytest.fixture
def as_account(store: Store, account: Account) -> AccountKV:
    return AccountKV(store.kv, account.id)


FLOW = """\
metadata: {name: store ops}
nodes:
  put_a: {type: store, params: {operation: set, key: "user:1", value: {name: Ada, age: 36}},
          next: {default: put_b}}
  put_b: {type: store, params: {operation: set, key: "user:2", value: {name: Bob, age: 25},
          ttl: 1h}, next: {default: put_c}}
  put_c: {type: store, params: {operation: set, key: "order:1", value: {total: 3}},
          next: {default: get}}
  get: {type: store, params: {operation: get, key: "user:1"}, next: {default: name}}
  name: {type: set, params: {values: {got: "${shared.store_result.name}"}}, next: {default: count}}
  count: {type: store, params: {operation: increment, key: hits, amount: 5},
          next: {default: count2}}
  count2: {type: store, params: {operation: increment, key: hits}, next: {default: log}}
  log: {type: store, params: {operation: append, key: log, value: "${input}"},
        next: {default: keys}}
  keys: {type: store, params: {operation: list, prefix: "user:"}, next: {default: older}}
  older: {type: store, params: {operation: query, prefix: "user:", filter: {age: {$gt: 20}},
          sort: -age, limit: 5}, next: {default: drop}}
  drop: {type: store, params: {operation: delete, key: "order:1"}, next: {default: missing}}
  missing: {type: store, params: {operation: get, key: "order:1", default: none left},
            next: {default: save}}
  save: {type: store, params: {operation: save, path: store.json}, next: {default: out}}
  out:
    type: set
    params:
      values:
        summary:
          got: "${shared.got}"
          hits: "${results.count2}"
          log: "${results.log}"
          keys: "${results.keys}"
          older: "${results.older}"
          drop: "${results.drop}"
          missing: "${results.missing}"
          save: "${results.save}"
          set: "${results.put_b}"
"""


async def test_every_operation_with_the_originals_output_shapes(as_account: AccountKV) -> None:
    result = await run(FLOW, 7, as_account)
    assert result.output["summary"] == {
        "got": "Ada",
        "hits": 6,
        "log": [6],
        "keys": ["user:1", "user:2"],
        "older": [
            {"key": "user:1", "value": {"name": "Ada", "age": 36}},
            {"key": "user:2", "value": {"name": "Bob", "age": 25}},
        ],
        "drop": {"key": "order:1", "deleted": True, "success": True},
        "missing": "none left",
        "save": {"success": True, "operation": "save", "durable": True},
        "set": {"key": "user:2", "value": {"name": "Bob", "age": 25}, "success": True, "ttl": 3600},
    }
    entry = await as_account.get("default", "user:2")
    assert entry.expires_at is not None


async def test_concurrent_runs_increment_atomically(as_account: AccountKV) -> None:
    flow = compile_flow(
        load_flow(
            "metadata: {name: c}\nnodes:\n"
            "  add: {type: store, params: {operation: increment, key: runs},"
            " next: {default: log}}\n"
            "  log: {type: store, params: {operation: append, key: seen, value: '${input}'}}\n"
        )
    )
    runs = 12
    await asyncio.gather(*(flow.run(i, scoped={RUN_KV: as_account}) for i in range(runs)))
    assert (await as_account.get("default", "runs")).value == runs
    # Each run saw its own count: no two increments read the same old value.
    assert sorted((await as_account.get("default", "seen")).value) == list(range(1, runs + 1))


async def test_entries_belong_to_the_run_account(
    store: Store, account: Account, other: Account
) -> None:
    flow = compile_flow(
        load_flow(
            "metadata: {name: c}\nnodes:\n"
            "  put: {type: store, params: {operation: set, key: k, value: '${input}'},"
            " next: {default: keys}}\n"
            "  keys: {type: store, params: {operation: list}}\n"
        )
    )
    for who, value in ((account, "ada's"), (other, "bob's")):
        kv = AccountKV(store.kv, who.id)
        assert (await flow.run(value, scoped={RUN_KV: kv})).output == ["k"]
    assert (await store.kv.get(account.id, "default", "k")).value == "ada's"
    assert (await store.kv.get(other.id, "default", "k")).value == "bob's"


async def test_namespaces_keep_keys_apart(as_account: AccountKV) -> None:
    await as_account.put("default", "k", 1)
    out = await run(
        "metadata: {name: n}\nnodes:\n"
        "  g: {type: store, params: {operation: get, key: k, namespace: other, default: 0}}\n",
        kv=as_account,
    )
    assert out.output == 0


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ("{operation: get, key: nope}", "get: key 'nope' not found (give 'default'"),
        ("{operation: increment, key: text}", "increment: cannot increment 'text': its value"),
        ("{operation: append, key: text, value: 1}", "append: cannot append to 'text'"),
        ("{operation: query, filter: {a: {$near: 1}}}", "unknown operator '$near'"),
        ("{operation: get, key: '${input.missing}'}", "get: this operation needs 'key'"),
        ("{operation: set, key: k, value: 1, ttl: '${input.ttl}'}", "ttl: invalid duration"),
    ],
)
async def test_failures_are_clear_node_errors(
    as_account: AccountKV, params: str, message: str
) -> None:
    await as_account.put("default", "text", "words")
    with pytest.raises(NodeFailed, match=message.replace("$", r"\$").replace("(", r"\(")):
        await run(
            f"metadata: {{name: f}}\nnodes:\n  s: {{type: store, params: {params}}}\n",
            {"ttl": "soon"},
            as_account,
        )


async def test_without_a_store_the_node_says_so() -> None:
    with pytest.raises(NodeFailed, match="this run has no key-value store"):
        await run("metadata: {name: f}\nnodes:\n  s: {type: store, params: {operation: list}}\n")


def test_a_wrong_param_is_named_with_its_position() -> None:
    with pytest.raises(DefinitionError) as caught:
        load_flow(
            "metadata: {name: f}\nnodes:\n  s:\n    type: store\n"
            "    params: {operation: get, keys: a}\n"
        )
    found = {(p.message, p.line, p.column) for p in caught.value.problems}
    assert ("unknown key 'keys'", 5, 30) in found
    assert ("missing required key 'key'", 5, 5) in found
