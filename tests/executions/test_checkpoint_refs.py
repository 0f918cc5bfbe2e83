"""Checkpoints hold each big value once: the run input by reference, other values by digest."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from flowrunner import jsontext
from flowrunner.executions import Recovery, Topic
from flowrunner.executions.checkpoint_refs import (
    DICT,
    INLINE_BYTES,
    KEY,
    REF,
    VALUES,
    Packer,
    unpack,
)
from flowrunner.storage import Account, Checkpoint, Store
from tests.executions.conftest import HarnessFactory

BIG = {"rows": [{"id": i, "name": f"customer {i}"} for i in range(200)]}
OTHER = {"rows": [{"id": i, "name": f"supplier {i}"} for i in range(200)]}


def _checkpoint(shared: Any, results: dict[str, Any]) -> Checkpoint:
    return Checkpoint("e", "a", shared, "next", results, datetime(2026, 1, 1, tzinfo=UTC))


def test_big_values_equal_to_the_input_are_references_and_others_are_stored_once() -> None:
    assert len(jsontext.dumps(BIG)) > INLINE_BYTES
    shared, results = Packer(BIG).pack(dict(BIG), {"a": BIG, "b": OTHER, "c": OTHER, "d": 7})
    assert shared == {REF: "input"}
    assert results["a"] == {REF: "input"}
    assert results["b"] == results["c"] != {REF: "input"}
    assert results["d"] == 7  # small values stay in place
    assert list(results[VALUES].values()) == [OTHER["rows"]]  # one copy for b and c
    assert len(jsontext.dumps(results)) < 1.2 * len(jsontext.dumps(OTHER))


def test_an_object_holding_input_values_references_them_and_keeps_its_new_keys() -> None:
    run_input = {"big": BIG, "other": OTHER, "small": 1}
    shared = {"big": BIG, "mine": OTHER, "note": "x"}  # a value of the input, moved and new
    packed_shared, results = Packer(run_input).pack(shared, {"a": OTHER})
    assert packed_shared == {
        DICT: {
            "big": {REF: "input", KEY: "big"},
            "mine": {REF: "input", KEY: "other"},
            "note": "x",
        }
    }
    assert results == {"a": {REF: "input", KEY: "other"}}
    got = unpack(_checkpoint(packed_shared, results), run_input)
    assert (got.shared, dict(got.results)) == (shared, {"a": OTHER})


def test_unpack_gives_every_reference_its_own_copy() -> None:
    shared, results = Packer(BIG).pack(BIG, {"a": BIG, "b": OTHER, "c": OTHER})
    got = unpack(_checkpoint(shared, results), BIG)
    assert got.shared == BIG
    assert dict(got.results) == {"a": BIG, "b": OTHER, "c": OTHER}
    got.results["b"]["rows"].clear()
    assert got.results["c"] == OTHER
    assert got.shared is not got.results["a"]


def test_user_data_that_looks_like_a_marker_round_trips_unchanged() -> None:
    tricky = {REF: "input"}
    nested = {"x": {DICT: {"y": 1}}, "big": OTHER, "z": {REF: "input", KEY: "rows"}}
    shared, results = Packer(BIG).pack(tricky, {"a": tricky, "b": {REF: "nope"}, "c": nested})
    got = unpack(_checkpoint(shared, results), BIG)
    assert got.shared == tricky
    assert dict(got.results) == {"a": tricky, "b": {REF: "nope"}, "c": nested}


def test_a_checkpoint_saved_before_references_existed_reads_as_it_was() -> None:
    got = unpack(_checkpoint({"n": 1}, {"a": BIG}), {"x": 1})
    assert (got.shared, dict(got.results)) == ({"n": 1}, {"a": BIG})


PASS_ALONG = """
metadata: {name: pass along}
nodes:
  first: {type: set, params: {values: {seen: true}}, next: {default: nap}}
  nap: {type: delay, params: {duration: "${shared.nap}"}, next: {default: last}}
  last: {type: set, params: {values: {rows: "${shared.rows}", seen: "${shared.seen}"}}}
"""


async def test_a_crashed_run_resumes_from_a_checkpoint_of_references_and_then_drops_it(
    harnesses: HarnessFactory, store: Store, account: Account
) -> None:
    crashed = harnesses()
    flow_id = await crashed.flow(PASS_ALONG)
    run_input = {**BIG, "nap": 30}
    execution = await store.executions.create(
        account.id, flow_id=flow_id, flow_version=1, input=run_input
    )
    await store.executions.acquire_lease(
        account.id, execution.id, owner="crashed", ttl=timedelta(milliseconds=300)
    )
    live = await crashed.bus.subscribe(Topic(account.id, execution_id=execution.id))
    dying = asyncio.get_running_loop().create_task(crashed.runner.run(execution))
    async with asyncio.timeout(10):
        async for event in live:
            if event.data.get("node_id") == "nap" and event.data.get("state") == "started":
                break
    await live.close()
    dying.cancel()
    with pytest.raises(asyncio.CancelledError):
        await dying
    stored = await store.executions.get_checkpoint(account.id, execution.id)
    assert stored is not None
    assert stored.next_node == "nap"
    # The shared state is the input plus a key: the input is not repeated, only referenced.
    assert VALUES not in stored.results
    stored_bytes = len(jsontext.dumps(stored.results)) + len(jsontext.dumps(stored.shared))
    assert stored_bytes < len(jsontext.dumps(run_input)) / 10
    # Shorten the nap the resumed run will take (the run reads it from shared).
    point = unpack(stored, run_input)
    shared = {**point.shared, "nap": 0}
    await store.executions.save_checkpoint(
        account.id, execution.id, shared=shared, next_node="nap", results=dict(stored.results)
    )
    await asyncio.sleep(0.35)

    survivor = harnesses(owner="survivor")
    recovery = Recovery(store.executions, survivor.executor, lease_ttl=timedelta(seconds=2))
    assert await recovery.claim_once() == 1
    await survivor.executor.wait(execution.id)
    done = await store.executions.get(account.id, execution.id)
    assert done.status == "completed"
    # The state came back whole (the output is past the harness's payload limit: its size).
    assert done.output is not None
    assert done.output["size"] == len(jsontext.dumps({"rows": BIG["rows"], "seen": True}))
    assert await store.executions.get_checkpoint(account.id, execution.id) is None
