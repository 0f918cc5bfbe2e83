"""The runner: pinned version → compiled engine run → stored events, checkpoints, status."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from flowrunner.executions import FlowCache, RunControl, Runner
from flowrunner.executions.recorder import uninterrupted
from flowrunner.executions.sealing import is_sealed
from flowrunner.executions.sizes import RunLimits
from flowrunner.secrets import Keyring
from flowrunner.storage import Execution, ExecutionStore, NewEvent
from tests.executions.conftest import (
    FAILING,
    STEPS,
    Harness,
    secrets_of,
    written_checkpoints,
)

KEY = Keyring.generate_key()


async def _create(h: Harness, flow_id: str, run_input: object) -> Execution:
    return await h.store.executions.create(
        h.account.id, flow_id=flow_id, flow_version=1, input=run_input
    )


async def test_run_completes_with_output_and_one_event_per_node_transition(
    harness: Harness,
) -> None:
    flow_id = await harness.flow(STEPS)
    execution = await _create(harness, flow_id, {"name": "Ada"})
    done = await harness.runner.run(execution)
    assert done.status == "completed"
    assert done.output == {"done": True}
    assert done.started_at is not None
    assert done.finished_at is not None
    events = await harness.store.executions.list_events(harness.account.id, execution.id)
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    kinds = [(e.type, e.data.get("node_id"), e.data.get("state")) for e in events]
    assert kinds == [
        ("status", None, None),
        ("node", "first", "started"),
        ("node", "first", "finished"),
        ("node", "second", "started"),
        ("log", "second", None),
        ("node", "second", "finished"),
        ("node", "third", "started"),
        ("node", "third", "finished"),
        ("complete", None, None),
    ]
    assert events[4].data["message"] == "said hi Ada"
    assert events[2].data["output"] == {"greeting": "hi Ada"}
    assert events[2].data["duration_ms"] >= 0
    assert events[2].data["attempt"] == 1


async def test_failure_records_the_node_and_masks_secrets(harness: Harness) -> None:
    flow_id = await harness.flow(FAILING)
    execution = await _create(harness, flow_id, {})
    done = await harness.runner.run(execution)
    assert done.status == "failed"
    assert done.error is not None
    assert done.error["node_id"] == "boom"
    assert done.error["code"] == "flow_failed"
    assert "s3cr3t-value" not in str(done.error)
    assert "***" in str(done.error["message"])
    events = await harness.store.executions.list_events(harness.account.id, execution.id)
    assert events[-1].type == "error"
    assert events[-1].data["error"]["node_id"] == "boom"
    assert "s3cr3t-value" not in repr([e.data for e in events])


async def test_secret_in_an_output_is_masked_in_events_and_the_result(harness: Harness) -> None:
    flow_id = await harness.flow(
        """
metadata: {name: leak}
nodes:
  leak:
    type: set
    params: {values: {auth: "Bearer ${secrets.TOKEN}"}}
"""
    )
    done = await harness.runner.run(await _create(harness, flow_id, {}))
    assert done.output == {"auth": "Bearer ***"}
    events = await harness.store.executions.list_events(harness.account.id, done.id)
    assert "s3cr3t-value" not in repr([e.data for e in events])


async def test_large_output_is_truncated_with_a_marker(harness: Harness) -> None:
    flow_id = await harness.flow(
        """
metadata: {name: big}
nodes:
  big:
    type: set
    params: {values: {blob: "${input.blob}"}}
"""
    )
    done = await harness.runner.run(await _create(harness, flow_id, {"blob": "x" * 10_000}))
    assert done.output["$truncated"] is True
    assert done.output["size"] > 10_000
    events = await harness.store.executions.list_events(harness.account.id, done.id)
    finished = [e for e in events if e.data.get("state") == "finished"]
    assert finished[0].data["output"]["$truncated"] is True


async def test_a_completed_run_keeps_no_checkpoint(harness: Harness) -> None:
    # Nothing is left to resume: the final status drops the checkpoint in the same write.
    flow_id = await harness.flow(STEPS)
    execution = await _create(harness, flow_id, {"name": "Ada"})
    done = await harness.runner.run(execution)
    assert done.status == "completed"
    assert await harness.store.executions.get_checkpoint(harness.account.id, done.id) is None


async def test_a_failed_run_keeps_its_last_checkpoint_with_the_state_so_far(
    harness: Harness,
) -> None:
    # The checkpoint a retry with resume starts from: saved after `ok`, before `boom`.
    flow_id = await harness.flow(FAILING)
    execution = await _create(harness, flow_id, {})
    failed = await harness.runner.run(execution)
    assert failed.status == "failed"
    checkpoint = await harness.store.executions.get_checkpoint(harness.account.id, execution.id)
    assert checkpoint is not None
    assert checkpoint.next_node == "boom"
    assert checkpoint.shared["before"] is True
    assert checkpoint.resume["last_node"] == "ok"
    assert set(checkpoint.results) == {"ok"}  # node outputs only: the bookkeeping is apart


async def test_resume_from_a_checkpoint_runs_only_the_remaining_nodes(harness: Harness) -> None:
    flow_id = await harness.flow(STEPS)
    execution = await _create(harness, flow_id, {"name": "Ada"})
    execution = await harness.store.executions.update(
        harness.account.id, execution.id, status="running"
    )
    # As if a crashed runner had finished `first` and checkpointed before `second`.
    await harness.store.executions.save_checkpoint(
        harness.account.id,
        execution.id,
        shared={"name": "Ada", "greeting": "hi from before the crash"},
        next_node="second",
        results={"first": {"greeting": "x"}},
        resume={"last_node": "first", "steps": 1},
    )
    done = await harness.runner.run(execution)
    assert done.status == "completed"
    events = await harness.store.executions.list_events(harness.account.id, execution.id)
    assert events[0].type == "status"
    assert events[0].data["resumed"] is True
    assert events[0].data["from_node"] == "second"
    started = [e.data["node_id"] for e in events if e.data.get("state") == "started"]
    assert started == ["second", "third"]
    logs = [e for e in events if e.type == "log"]
    assert logs[0].data["message"] == "said hi from before the crash"


async def test_a_version_that_no_longer_compiles_fails_the_run_before_any_node(
    harness: Harness,
) -> None:
    flow_id = await harness.flow(STEPS)
    execution = await harness.store.executions.create(
        harness.account.id, flow_id=flow_id, flow_version=7, input={}
    )
    done = await harness.runner.run(execution, RunControl())
    assert done.status == "failed"
    assert done.error is not None
    assert done.error["code"] == "not_found"


async def test_a_cancel_during_a_store_write_lets_the_write_finish_first(
    harness: Harness,
) -> None:
    flow_id = await harness.flow(STEPS)
    execution = await _create(harness, flow_id, {})
    write = harness.store.executions.append_events(
        harness.account.id, execution.id, [NewEvent("log", {"message": "kept"})]
    )
    task = asyncio.get_running_loop().create_task(uninterrupted(write))
    await asyncio.sleep(0)  # the write has started
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    events = await harness.store.executions.list_events(harness.account.id, execution.id)
    assert [e.data["message"] for e in events] == ["kept"]


async def test_a_checkpoint_over_its_cap_fails_the_run_naming_the_node_and_keeps_the_last_one(
    harness: Harness,
) -> None:
    # Each node passes its ~500-byte input on: shared stays at ~1,050 bytes (the input and
    # `result`), but the results add up: the third checkpoint would pass 2,500 bytes.
    grow = """
metadata: {name: grow}
nodes:
  a: {type: log, params: {message: a}, next: {default: b}}
  b: {type: log, params: {message: b}, next: {default: c}}
  c: {type: log, params: {message: c}, next: {default: d}}
  d: {type: log, params: {message: d}}
"""
    runner = Runner(
        harness.store,
        harness.bus,
        FlowCache(),
        limits=RunLimits(node_output=1000, shared=1500, checkpoint=2500),
    )
    flow_id = await harness.flow(grow)
    execution = await _create(harness, flow_id, {"blob": "x" * 500})
    done = await runner.run(execution)
    assert done.status == "failed"
    assert done.error is not None
    assert done.error["code"] == "size_limit_exceeded"
    assert done.error["node_id"] == "c"
    assert "FLOWRUNNER_MAX_CHECKPOINT_BYTES" in done.error["message"]
    checkpoint = await harness.store.executions.get_checkpoint(harness.account.id, execution.id)
    assert checkpoint is not None
    assert checkpoint.next_node == "c"  # the last checkpoint within the cap stands


SEALED_FLOW = """
metadata: {name: sealed}
nodes:
  keep:
    type: set
    params: {values: {token: "${secrets.TOKEN}"}}
    next: {default: check}
  check:
    type: switch
    params: {value: "${shared.token}", cases: {s3cr3t-value: match}, default: nomatch}
    next: {match: matched, nomatch: missed}
  matched: {type: set, params: {values: {matched: true}}}
  missed: {type: set, params: {values: {matched: false}}}
"""


def _sealing_runner(h: Harness) -> Runner:
    return Runner(h.store, h.bus, FlowCache(), secrets=secrets_of, keys=Keyring([KEY]))


async def test_a_checkpoint_holding_a_secret_is_sealed_and_resumes_with_the_value(
    harness: Harness,
) -> None:
    runner = _sealing_runner(harness)
    flow_id = await harness.flow(SEALED_FLOW)
    written = written_checkpoints(harness)
    first = await runner.run(await _create(harness, flow_id, {}))
    assert first.status == "completed"
    assert first.output == {"matched": True}
    saved = written[-1]
    assert "s3cr3t-value" not in repr((saved.shared, saved.results))
    assert is_sealed(saved.shared)
    assert is_sealed(saved.results["keep"])
    assert saved.resume["last_node"] == "check"  # progress stays readable
    # A run resumed from that checkpoint opens it and sees the secret in shared again.
    again = await _create(harness, flow_id, {})
    again = await harness.store.executions.update(harness.account.id, again.id, status="running")
    await harness.store.executions.save_checkpoint(
        harness.account.id,
        again.id,
        shared=saved.shared,
        next_node="check",
        results={"keep": saved.results["keep"]},
        resume={"last_node": "keep", "steps": 1},
    )
    done = await runner.run(again)
    assert done.status == "completed"
    assert done.output == {"matched": True}


async def test_an_error_edge_checkpoint_seals_the_error_text(harness: Harness) -> None:
    runner = _sealing_runner(harness)
    flow_id = await harness.flow(
        """
metadata: {name: error-edge}
nodes:
  boom:
    type: fail
    params: {message: "bad ${secrets.TOKEN}, all fine"}
    next: {error: handled}
  handled: {type: log, params: {message: "handled ${error.message}"}, next: {default: end}}
  end: {type: set, params: {values: {done: true}}}
"""
    )
    written = written_checkpoints(harness)
    done = await runner.run(await _create(harness, flow_id, {}))
    assert done.status == "completed"
    events = await harness.store.executions.list_events(harness.account.id, done.id)
    assert "s3cr3t-value" not in repr([e.data for e in events])
    logs = [e.data["message"] for e in events if e.type == "log"]
    assert logs == ["handled bad ***, all fine"]
    assert written
    assert any(saved.resume.get("error") for saved in written)  # the error edge's, sealed
    for saved in written:
        assert "s3cr3t-value" not in repr((saved.shared, saved.results, saved.resume))


async def test_without_keys_a_secret_in_a_checkpoint_is_masked(harness: Harness) -> None:
    flow_id = await harness.flow(SEALED_FLOW)
    written = written_checkpoints(harness)
    await harness.runner.run(await _create(harness, flow_id, {}))
    saved = written[-1]
    assert isinstance(saved.shared, dict)
    assert saved.shared["token"] == "***"
    assert "s3cr3t-value" not in repr((saved.shared, saved.results))


async def test_a_checkpoint_sealed_under_a_lost_key_fails_the_run_and_says_why(
    harness: Harness,
) -> None:
    flow_id = await harness.flow(SEALED_FLOW)
    written = written_checkpoints(harness)
    await _sealing_runner(harness).run(await _create(harness, flow_id, {}))
    saved = written[-1]
    again = await _create(harness, flow_id, {})
    again = await harness.store.executions.update(harness.account.id, again.id, status="running")
    await harness.store.executions.save_checkpoint(
        harness.account.id,
        again.id,
        shared=saved.shared,
        next_node="check",
        results={"keep": saved.results["keep"]},
        resume={"last_node": "keep", "steps": 1},
    )
    other_keys = Runner(
        harness.store,
        harness.bus,
        FlowCache(),
        secrets=secrets_of,
        keys=Keyring([Keyring.generate_key()]),
    )
    done = await other_keys.run(again)
    assert done.status == "failed"
    assert done.error is not None
    assert "not in the keyring" in done.error["message"]


COPIED_ONCE = """
metadata: {name: copied once}
nodes:
  a: {type: set, params: {values: {big: "${input.big}!"}}, next: {default: b}}
  b: {type: set, params: {values: {n: 1}}, next: {default: c}}
  c: {type: set, params: {values: {n: 2}}, next: {default: d}}
  d: {type: set, params: {values: {n: 3}}}
"""


async def test_each_output_is_copied_into_the_checkpoints_once_and_stays_whole(
    harness: Harness,
) -> None:
    flow_id = await harness.flow(COPIED_ONCE)
    written = written_checkpoints(harness)
    done = await harness.runner.run(await _create(harness, flow_id, {"big": "x" * 2000}))
    assert done.status == "completed"
    assert [c.next_node for c in written] == ["b", "c", "d"]
    for checkpoint in written:
        # The big value (not the input) is stored once under $values, in every checkpoint.
        [(digest, value)] = checkpoint.results["$values"].items()
        assert value == "x" * 2000 + "!"
        assert checkpoint.results["a"] == {"$dict": {"big": {"$ref": digest}}}
    assert written[2].results["b"] == {"n": 1}
    assert written[2].results["c"] == {"n": 2}
    # Unchanged outputs are the copy made at their own checkpoint, not copied again.
    assert written[2].results["b"] is written[1].results["b"]
    assert written[2].results["$values"][digest] is written[0].results["$values"][digest]


def _die_right_after_moving_to(
    status: str, runs: ExecutionStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The process dies right after the write that moves a run to ``status`` committed."""
    moved = runs.update

    async def update_then_die(*args: Any, **kwargs: Any) -> Execution:
        done = await moved(*args, **kwargs)
        if kwargs.get("status") == status:
            raise RuntimeError("killed")
        return done

    monkeypatch.setattr(runs, "update", update_then_die)


LONG_NAP = """
metadata: {name: long nap}
nodes:
  first: {type: set, params: {values: {step: 1}}, next: {default: nap}}
  nap: {type: delay, params: {duration: 1h}, next: {default: last}}
  last: {type: set, params: {values: {step: 3}}}
"""


async def test_a_run_seen_waiting_has_its_waiting_event_stored_even_if_its_process_dies_then(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = harness
    runs = h.store.executions
    _die_right_after_moving_to("waiting", runs, monkeypatch)
    runner = Runner(h.store, h.bus, FlowCache(), secrets=secrets_of, wait_threshold=1.0)
    execution = await _create(h, await h.flow(LONG_NAP), {})
    with pytest.raises(RuntimeError, match="killed"):
        await runner.run(execution)
    assert (await runs.get(h.account.id, execution.id)).status == "waiting"
    events = await runs.list_events(h.account.id, execution.id)
    statuses = [e.data["status"] for e in events if e.type == "status"]
    assert statuses == ["running", "waiting"]
    waiting = next(e for e in events if e.data.get("status") == "waiting")
    assert waiting.data["node_id"] == "nap"
    assert "wake_at" in waiting.data


@pytest.mark.parametrize(
    ("flow", "status", "last_node", "final"),
    [(STEPS, "completed", "third", "complete"), (FAILING, "failed", "boom", "error")],
)
async def test_a_run_seen_finished_has_its_last_events_stored_even_if_its_process_dies_then(
    harness: Harness,
    monkeypatch: pytest.MonkeyPatch,
    flow: str,
    status: str,
    last_node: str,
    final: str,
) -> None:
    h = harness
    runs = h.store.executions
    _die_right_after_moving_to(status, runs, monkeypatch)
    execution = await _create(h, await h.flow(flow), {})
    with pytest.raises(RuntimeError, match="killed"):
        await h.runner.run(execution)
    # Recovery never resumes a finished run: what it has now is all it will ever have.
    seen = await runs.get(h.account.id, execution.id)
    assert seen.status == status
    events = await runs.list_events(h.account.id, execution.id)
    assert [e.seq for e in events] == list(range(1, seen.last_event_seq + 1))
    # Last, and once (the "killed" exception is recorded as a crash, after it: a process
    # that really died would not).
    history = [e for e in events if not e.data.get("crash")]
    assert history[-1].type == final
    assert [e.type for e in history].count(final) == 1
    ended = "finished" if status == "completed" else "failed"
    last = [e.data.get("state") for e in events if e.data.get("node_id") == last_node]
    assert last[0] == "started"
    assert last[-1] == ended
    assert last.count(ended) == 1


async def test_a_run_seen_canceled_by_record_canceled_has_its_event_even_if_its_process_dies(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = harness
    runs = h.store.executions
    _die_right_after_moving_to("canceled", runs, monkeypatch)
    execution = await _create(h, await h.flow(STEPS), {})
    with pytest.raises(RuntimeError, match="killed"):
        await h.runner.record_canceled(execution)
    assert (await runs.get(h.account.id, execution.id)).status == "canceled"
    events = await runs.list_events(h.account.id, execution.id)
    assert [(e.seq, e.type, e.data) for e in events] == [(1, "status", {"status": "canceled"})]
