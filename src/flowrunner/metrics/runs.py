"""Run and node metrics, read off the events a run publishes (the runner knows nothing of them).

Every status change and node end of a run executed in this process goes through the bus, so
wrapping the bus sees exactly what happened here, in order, at no cost to the run beyond a few
counter increments.
"""

from __future__ import annotations

from collections.abc import Sequence

from flowrunner.executions.bus import BusHealth, EventBus, Subscription, Topic
from flowrunner.executions.states import is_terminal
from flowrunner.metrics.registry import Metrics
from flowrunner.storage import ExecutionEvent

# Flow ids are label values: past this many distinct ones in a process, the rest are
# counted under one label, so a tenant creating flows in a loop cannot grow the series.
MAX_FLOW_LABELS = 500
OTHER_FLOWS = "_other"
# Start times of runs in flight; a run that never reports its end (its process handed it
# back) must not stay here forever.
MAX_TRACKED_RUNS = 100_000


class MeteredBus:
    """An ``EventBus`` that counts what goes through it, then hands it on unchanged."""

    def __init__(self, inner: EventBus, metrics: Metrics) -> None:
        self._inner = inner
        self._m = metrics
        self._flows: set[str] = set()
        self._started: dict[str, float] = {}

    async def publish(self, flow_id: str, events: Sequence[ExecutionEvent]) -> None:
        for event in events:
            if event.type == "node":
                self._node(event)
            elif event.type in ("status", "complete", "error"):
                self._status(flow_id, event)
        await self._inner.publish(flow_id, events)

    async def subscribe(self, topic: Topic) -> Subscription:
        return await self._inner.subscribe(topic)

    def health(self) -> BusHealth:
        return self._inner.health()

    def _node(self, event: ExecutionEvent) -> None:
        state = event.data.get("state")
        duration = event.data.get("duration_ms")
        if state in ("finished", "failed") and isinstance(duration, (int, float)):
            self._m.node_duration.labels(state).observe(duration / 1000)

    def _status(self, flow_id: str, event: ExecutionEvent) -> None:
        status = event.data.get("status")
        if not isinstance(status, str):
            return
        when = event.created_at.timestamp()
        if status == "waiting":
            # A durable wait: the run is in flight nowhere until it is woken (docs/waiting.md).
            if self._started.pop(event.execution_id, None) is not None:
                self._m.runs_in_flight.dec()
            return
        if status == "running":
            if event.execution_id in self._started:
                return  # already counted (a repeated status event)
            if event.data.get("woken"):
                # Back from a durable wait: in flight again, not a new run.
                self._track(event.execution_id, when)
                return
            self._track(event.execution_id, when)
            self._m.runs_started.labels(self._flow_label(flow_id)).inc()
        elif is_terminal(status):
            self._m.runs_finished.labels(self._flow_label(flow_id), status).inc()
            started = self._started.pop(event.execution_id, None)
            if started is not None:
                self._m.runs_in_flight.dec()
                self._m.run_duration.labels(status).observe(max(0.0, when - started))

    def _track(self, execution_id: str, when: float) -> None:
        if len(self._started) >= MAX_TRACKED_RUNS:
            self._started.pop(next(iter(self._started)))
            self._m.runs_in_flight.dec()
        self._started[execution_id] = when
        self._m.runs_in_flight.inc()

    def _flow_label(self, flow_id: str) -> str:
        if flow_id in self._flows:
            return flow_id
        if len(self._flows) < MAX_FLOW_LABELS:
            self._flows.add(flow_id)
            return flow_id
        return OTHER_FLOWS
