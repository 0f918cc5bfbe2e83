"""The metric families, built once per app (no module-level registry) and rendered for a scrape.

``serve --workers N`` runs N processes behind one port, and a scrape reaches any one of them:
then every process writes its values to files in a shared directory (prometheus-client's
multiprocess mode, ``PROMETHEUS_MULTIPROC_DIR``, set by ``serve`` before the workers start) and
a scrape sums them. Gauges of one process (runs in flight) are summed over live processes.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Sequence

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

from flowrunner.executions.bus import EventBus
from flowrunner.scripting import Sandbox

ENV = "PROMETHEUS_MULTIPROC_DIR"
log = logging.getLogger(__name__)
Probe = tuple[Gauge, Callable[[], float]]
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# Seconds. Runs and nodes range from a microsecond path lookup to hours of waiting.
_RUN_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
_FAST_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5)


def multiprocess_dir() -> str | None:
    """The shared directory of multiprocess mode, when this process is one of several."""
    return os.environ.get(ENV) or None


class Metrics:
    """Every metric the server records. Label values that come from users (flow ids) are
    bounded by the caller (``runs.MeteredBus``) so a tenant cannot grow the series without
    end."""

    def __init__(self) -> None:
        self._dir = multiprocess_dir()
        # In multiprocess mode values live in files; a scrape reads them with a fresh collector.
        self.registry = CollectorRegistry()
        reg = None if self._dir else self.registry
        self.http_requests = Counter(
            "flowrunner_http_requests",
            "HTTP requests answered, by method, route template and status code.",
            ["method", "route", "status"],
            registry=reg,
        )
        self.http_duration = Histogram(
            "flowrunner_http_request_duration_seconds",
            "Time to answer an HTTP request (to the end of its body), by route template.",
            ["route"],
            buckets=_FAST_BUCKETS,
            registry=reg,
        )
        self.runs_started = Counter(
            "flowrunner_runs_started",
            "Runs that started in this server (a resumed run counts once more), by flow id.",
            ["flow"],
            registry=reg,
        )
        self.runs_finished = Counter(
            "flowrunner_runs_finished",
            "Runs that ended, by flow id and final status.",
            ["flow", "status"],
            registry=reg,
        )
        self.run_duration = Histogram(
            "flowrunner_run_duration_seconds",
            "From a run's start (or resume) to its end, by final status.",
            ["status"],
            buckets=_RUN_BUCKETS,
            registry=reg,
        )
        self.node_duration = Histogram(
            "flowrunner_node_duration_seconds",
            "A node's time, by how it ended (finished or failed).",
            ["state"],
            buckets=_RUN_BUCKETS,
            registry=reg,
        )
        self.runs_in_flight = Gauge(
            "flowrunner_runs_in_flight",
            "Runs started and not yet ended in live server processes.",
            registry=reg,
            multiprocess_mode="livesum",
        )
        self.runs_held = Gauge(
            "flowrunner_runs_held",
            "Runs the executors hold, running or queued for a slot.",
            registry=reg,
            multiprocess_mode="livesum",
        )
        self.runs_queued = Gauge(
            "flowrunner_runs_queued",
            "Runs the executors hold that wait for their first slot (the queue's depth).",
            registry=reg,
            multiprocess_mode="livesum",
        )
        self.storage_seconds = Histogram(
            "flowrunner_storage_operation_seconds",
            "Time of a storage call, by entity family and operation.",
            ["family", "operation"],
            buckets=_FAST_BUCKETS,
            registry=reg,
        )
        self.storage_errors = Counter(
            "flowrunner_storage_operation_errors",
            "Storage calls that raised, by entity family, operation and error class.",
            ["family", "operation", "error"],
            registry=reg,
        )
        self.webhook_deliveries = Counter(
            "flowrunner_webhook_deliveries",
            "Outbound webhook delivery attempts, by outcome.",
            ["outcome"],
            registry=reg,
        )
        self.sandbox_workers = Gauge(
            "flowrunner_sandbox_workers",
            "JavaScript sandbox worker processes alive.",
            registry=reg,
            multiprocess_mode="livesum",
        )
        self.sandbox_replaced = Gauge(
            "flowrunner_sandbox_workers_replaced",
            "Sandbox workers replaced since the process started: recycled (evaluations or "
            "memory), or killed (a timeout, a crash, a limit hit).",
            registry=reg,
            multiprocess_mode="livesum",
        )
        self.sandbox_seconds = Histogram(
            "flowrunner_sandbox_evaluation_seconds",
            "Time of one evaluation at a sandbox worker (a node's expressions, a script).",
            buckets=_FAST_BUCKETS,
            registry=reg,
        )
        self._sandbox: Sandbox | None = None

    async def sample(
        self, probes: Sequence[tuple[Gauge, Callable[[], float]]], every: float
    ) -> None:
        """Set each gauge from its probe every ``every`` seconds, until cancelled (values a
        scrape cannot read itself in multiprocess mode: it runs in one process of N)."""
        while True:
            for gauge, probe in probes:
                try:
                    gauge.set(probe())
                except Exception:  # a probe's bug must not end the sampling of the others
                    log.exception("metrics probe failed")
            await asyncio.sleep(every)

    def watch_sandbox(self, sandbox: Sandbox) -> None:
        """Time ``sandbox``'s evaluations, and sample its workers (``probes``)."""
        sandbox.observe = self.sandbox_seconds.observe
        self._sandbox = sandbox

    def probes(self, held: Callable[[], float], queued: Callable[[], float]) -> list[Probe]:
        """The sampled gauges: runs the executor holds (``held``), those of them waiting for a
        slot (``queued``), and the sandbox's workers."""
        found: list[Probe] = [(self.runs_held, held), (self.runs_queued, queued)]
        sandbox = self._sandbox
        if sandbox is not None:
            found.append((self.sandbox_workers, lambda: sandbox.workers_alive))
            found.append((self.sandbox_replaced, lambda: sandbox.recycled + sandbox.workers_killed))
        return found

    def webhook_delivered(self, outcome: str) -> None:
        self.webhook_deliveries.labels(outcome).inc()

    def bus(self, inner: EventBus) -> EventBus:
        """``inner`` with every published run and node event counted here."""
        from flowrunner.metrics.runs import MeteredBus

        return MeteredBus(inner, self)

    def render(self) -> bytes:
        """The Prometheus text exposition of every process's values."""
        if self._dir is None:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=self._dir)  # type: ignore[no-untyped-call]
        return generate_latest(registry)

    def process_exited(self) -> None:
        """Drop this process's live gauges (a stopped worker's runs are not in flight)."""
        if self._dir is not None:
            multiprocess.mark_process_dead(os.getpid(), self._dir)  # type: ignore[no-untyped-call]
