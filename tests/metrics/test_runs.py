"""Run metrics read off published events: counts, in-flight, and bounded label values."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from flowrunner.executions import InProcessBus, Topic
from flowrunner.metrics import Metrics, runs
from flowrunner.metrics.runs import MeteredBus
from flowrunner.storage import ExecutionEvent

T0 = datetime(2026, 12, 7, tzinfo=UTC)


@pytest.fixture
def metrics(monkeypatch: pytest.MonkeyPatch) -> Metrics:
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    return Metrics()


def event(execution: str, seq: int, kind: str, at: float = 0, **data: Any) -> ExecutionEvent:
    return ExecutionEvent(execution, "a1", seq, kind, data, T0 + timedelta(seconds=at))


def sample(metrics: Metrics, name: str, **labels: str) -> float:
    found = metrics.registry.get_sample_value(name, labels)
    return found or 0.0


async def test_a_run_is_counted_started_then_finished_with_its_duration(metrics: Metrics) -> None:
    bus = MeteredBus(InProcessBus(), metrics)
    follower = await bus.subscribe(Topic("a1", execution_id="e1"))
    await bus.publish("f1", [event("e1", 1, "status", status="running")])
    assert sample(metrics, "flowrunner_runs_in_flight") == 1
    await bus.publish(
        "f1",
        [
            event("e1", 2, "node", 1, state="started", node_id="a"),
            event("e1", 3, "node", 2, state="finished", node_id="a", duration_ms=250.0),
            event("e1", 4, "complete", 3, status="completed", output={}),
        ],
    )
    assert sample(metrics, "flowrunner_runs_started_total", flow="f1") == 1
    assert sample(metrics, "flowrunner_runs_finished_total", flow="f1", status="completed") == 1
    assert sample(metrics, "flowrunner_runs_in_flight") == 0
    assert sample(metrics, "flowrunner_run_duration_seconds_sum", status="completed") == 3
    assert sample(metrics, "flowrunner_node_duration_seconds_sum", state="finished") == 0.25
    # The events went on to subscribers unchanged, in order.
    assert [(await follower.next(0.1)).seq for _ in range(4)] == [1, 2, 3, 4]  # type: ignore[union-attr]


async def test_a_run_ended_before_it_started_is_finished_but_never_in_flight(
    metrics: Metrics,
) -> None:
    bus = MeteredBus(InProcessBus(), metrics)
    await bus.publish("f1", [event("e1", 1, "status", status="canceled")])
    assert sample(metrics, "flowrunner_runs_finished_total", flow="f1", status="canceled") == 1
    assert sample(metrics, "flowrunner_runs_in_flight") == 0


async def test_flow_labels_are_bounded(metrics: Metrics, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runs, "MAX_FLOW_LABELS", 3)
    bus = MeteredBus(InProcessBus(), metrics)
    for n in range(10):
        await bus.publish(f"f{n}", [event(f"e{n}", 1, "status", status="running")])
    flows = {
        s.labels["flow"]
        for family in metrics.registry.collect()
        for s in family.samples
        if s.name == "flowrunner_runs_started_total"
    }
    assert flows == {"f0", "f1", "f2", runs.OTHER_FLOWS}
    assert sample(metrics, "flowrunner_runs_started_total", flow=runs.OTHER_FLOWS) == 7


async def test_runs_that_never_end_here_do_not_grow_the_tracking_without_end(
    metrics: Metrics, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runs, "MAX_TRACKED_RUNS", 5)
    bus = MeteredBus(InProcessBus(), metrics)
    for n in range(20):
        await bus.publish("f1", [event(f"e{n}", 1, "status", status="running")])
    assert len(bus._started) == 5
    assert sample(metrics, "flowrunner_runs_in_flight") == 5


async def test_a_waiting_run_is_not_in_flight_and_its_wake_is_not_a_new_start(
    metrics: Metrics,
) -> None:
    bus = MeteredBus(InProcessBus(), metrics)
    await bus.publish("f1", [event("e1", 1, "status", status="running")])
    await bus.publish("f1", [event("e1", 2, "status", 1, status="waiting", node_id="a")])
    assert sample(metrics, "flowrunner_runs_in_flight") == 0
    woken = event("e1", 3, "status", 60, status="running", resumed=True, woken=True)
    await bus.publish("f1", [woken])
    assert sample(metrics, "flowrunner_runs_in_flight") == 1
    await bus.publish("f1", [event("e1", 4, "complete", 61, status="completed")])
    assert sample(metrics, "flowrunner_runs_started_total", flow="f1") == 1
    assert sample(metrics, "flowrunner_runs_in_flight") == 0
    assert sample(metrics, "flowrunner_run_duration_seconds_sum", status="completed") == 1
