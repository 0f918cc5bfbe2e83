"""The recorder's checkpoints: which ones a run may leave out (``Recorder._skippable``), and
what a crash in between costs."""

from __future__ import annotations

from typing import Any

import pytest

from flowrunner.executions import FlowCache, RunControl, Runner
from flowrunner.executions.runner import DEFAULT_RUN_LIMITS
from flowrunner.executions.sizes import RunLimits
from flowrunner.storage import Execution
from tests.executions.conftest import Harness, registry_with_busy, secrets_of, written_checkpoints

# Only `set` nodes: they compute from the run's state, so they are replayable.
FOUR_SETS = """
metadata: {name: four sets}
nodes:
  a: {type: set, params: {values: {n: "${input.n + 1}"}}, next: {default: b}}
  b: {type: set, params: {values: {n: "${input.n + 1}"}}, next: {default: c}}
  c: {type: set, params: {values: {n: "${input.n + 1}"}}, next: {default: d}}
  d: {type: set, params: {values: {n: "${input.n + 1}"}}}
"""

# `work` (a `busy` node: a test type, not replayable) has an effect outside the run.
WITH_AN_EFFECT = """
metadata: {name: with an effect}
nodes:
  a: {type: set, params: {values: {n: "${input.n + 1}"}}, next: {default: work}}
  work: {type: busy, params: {seconds: 0}, next: {default: c}}
  c: {type: set, params: {values: {n: "${input.n + 1}"}}, next: {default: d}}
  d: {type: set, params: {values: {n: "${input.n + 1}"}}, next: {default: e}}
  e: {type: set, params: {values: {n: "${input.n + 1}"}}}
"""

EFFECT_FIRST = """
metadata: {name: effect first}
nodes:
  work: {type: busy, params: {seconds: 0}, next: {default: b}}
  b: {type: set, params: {values: {n: "${input.n + 1}"}}}
"""

HOUR = 3600.0


def _runner(h: Harness, window: float, limits: RunLimits | None = None) -> Runner:
    return Runner(
        h.store,
        h.bus,
        FlowCache(registry=registry_with_busy()),
        secrets=secrets_of,
        checkpoint_window=window,
        limits=limits or DEFAULT_RUN_LIMITS,
    )


async def _create(h: Harness, yaml: str) -> Execution:
    flow_id = await h.flow(yaml)
    return await h.store.executions.create(
        h.account.id, flow_id=flow_id, flow_version=1, input={"n": 0}
    )


async def test_a_run_of_replayable_nodes_stores_no_checkpoint_within_the_window(
    harness: Harness,
) -> None:
    h = harness
    written = written_checkpoints(h)
    done = await _runner(h, HOUR).run(await _create(h, FOUR_SETS))
    assert done.status == "completed"
    assert done.output == {"n": 4}
    assert written == []
    # Every node's events are still stored, in order, with the final write.
    events = await h.store.executions.list_events(h.account.id, done.id)
    assert [e.seq for e in events] == list(range(1, done.last_event_seq + 1))
    nodes = [(e.data["node_id"], e.data["state"]) for e in events if e.type == "node"]
    assert nodes == [(n, s) for n in "abcd" for s in ("started", "finished")]


async def test_a_window_of_zero_stores_a_checkpoint_after_every_node(harness: Harness) -> None:
    h = harness
    written = written_checkpoints(h)
    done = await _runner(h, 0.0).run(await _create(h, FOUR_SETS))
    assert done.output == {"n": 4}
    assert [c.next_node for c in written] == ["b", "c", "d"]


async def test_a_node_with_an_effect_starts_and_ends_at_a_stored_checkpoint(
    harness: Harness,
) -> None:
    h = harness
    written = written_checkpoints(h)
    done = await _runner(h, HOUR).run(await _create(h, WITH_AN_EFFECT))
    assert done.output == {"n": 4}
    # Before `work` and right after it; none between the replayable c, d and e.
    assert [c.next_node for c in written] == ["work", "c"]
    assert written[1].results["work"] == {"n": 1}


async def test_a_crash_after_skipped_checkpoints_resumes_at_the_last_stored_one(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = harness
    runs = h.store.executions
    runner = _runner(h, HOUR)
    execution = await _create(h, WITH_AN_EFFECT)
    update = runs.update

    async def die_before_completing(*args: Any, **kwargs: Any) -> Execution:
        if kwargs.get("status") == "completed":
            raise RuntimeError("killed")  # the process dies before its final write
        return await update(*args, **kwargs)

    monkeypatch.setattr(runs, "update", die_before_completing)
    with pytest.raises(RuntimeError, match="killed"):
        await runner.run(execution)
    monkeypatch.setattr(runs, "update", update)
    checkpoint = await runs.get_checkpoint(h.account.id, execution.id)
    assert checkpoint is not None
    assert checkpoint.next_node == "c"  # c and d computed, their checkpoints left out

    resumed = await runs.get(h.account.id, execution.id)
    done = await runner.run(resumed)
    assert done.status == "completed"
    assert done.output == {"n": 4}  # the same answer: only the run's own state was recomputed
    events = await runs.list_events(h.account.id, execution.id)
    after = events[[e.data.get("resumed") for e in events].index(True) :]
    started = [e.data["node_id"] for e in after if e.data.get("state") == "started"]
    assert started == ["c", "d", "e"]  # the node with an effect is not run again


async def test_a_run_asked_to_stop_stores_its_checkpoint_at_once(harness: Harness) -> None:
    h = harness
    written = written_checkpoints(h)
    control = RunControl(suspend_requested=True)
    execution = await _create(h, FOUR_SETS)
    stopped = await _runner(h, HOUR).run(execution, control)
    assert stopped.status == "running"  # another executor resumes it at b
    assert (await h.store.executions.get(h.account.id, execution.id)).status == "running"
    assert [c.next_node for c in written] == ["b"]


def _moves(h: Harness, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, bool]]:
    """Every status the store is asked to write, and whether that write sets ``started_at``."""
    moves: list[tuple[str, bool]] = []
    runs = h.store.executions
    update = runs.update

    async def spy(*args: Any, **kwargs: Any) -> Execution:
        if kwargs.get("status") is not None:
            moves.append((kwargs["status"], kwargs.get("started_at") is not None))
        return await update(*args, **kwargs)

    monkeypatch.setattr(runs, "update", spy)
    return moves


async def test_a_run_of_replayable_nodes_moves_to_running_in_its_final_write(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = harness
    moves = _moves(h, monkeypatch)
    done = await _runner(h, HOUR).run(await _create(h, FOUR_SETS))
    assert moves == [("completed", True)]  # one write: queued -> completed, started too
    assert done.status == "completed"
    assert done.started_at is not None
    assert done.finished_at is not None
    assert done.started_at <= done.finished_at
    events = await h.store.executions.list_events(h.account.id, done.id)
    assert [e.data["status"] for e in events if e.type == "status"] == ["running"]


async def test_a_run_starting_with_an_effect_is_running_before_that_node_starts(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = harness
    moves = _moves(h, monkeypatch)
    done = await _runner(h, HOUR).run(await _create(h, EFFECT_FIRST))
    assert done.status == "completed"
    assert moves == [("running", True), ("completed", False)]


async def test_a_deferred_start_is_stored_before_the_first_checkpoint(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = harness
    moves = _moves(h, monkeypatch)
    written = written_checkpoints(h)
    done = await _runner(h, HOUR).run(await _create(h, WITH_AN_EFFECT))
    assert done.status == "completed"
    # `a` ran while the record still said queued; the checkpoint before `work` moved it.
    assert moves == [("running", True), ("completed", False)]
    assert [c.next_node for c in written] == ["work", "c"]


async def test_the_shared_state_cap_holds_after_a_node_whose_checkpoint_is_skipped(
    harness: Harness,
) -> None:
    # Each node doubles the shared state; no checkpoint is written (all replayable).
    grow = """
metadata: {name: grow}
nodes:
  a: {type: set, params: {values: {a: "${input.blob}"}}, next: {default: b}}
  b: {type: set, params: {values: {b1: "${shared.a}", b2: "${shared.a}"}}, next: {default: c}}
  c: {type: log, params: {message: done}}
"""
    h = harness
    written = written_checkpoints(h)
    limits = RunLimits(node_output=2500, shared=3000, checkpoint=1 << 20)
    flow_id = await h.flow(grow)
    execution = await h.store.executions.create(
        h.account.id, flow_id=flow_id, flow_version=1, input={"blob": "x" * 500}
    )
    failed = await _runner(h, HOUR, limits).run(execution)
    assert failed.status == "failed"
    assert failed.error is not None
    assert failed.error["code"] == "size_limit_exceeded"
    assert failed.error["node_id"] == "b"
    assert "FLOWRUNNER_MAX_SHARED_BYTES" in failed.error["message"]
    assert written == []
