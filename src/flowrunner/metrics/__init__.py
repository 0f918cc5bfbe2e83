"""Prometheus metrics of one server process: what ``/metrics`` exposes (docs/operations.md)."""

from flowrunner.metrics.http import HttpMetricsMiddleware
from flowrunner.metrics.registry import Metrics, multiprocess_dir
from flowrunner.metrics.runs import MeteredBus
from flowrunner.metrics.storage import metered_store

__all__ = ["HttpMetricsMiddleware", "MeteredBus", "Metrics", "metered_store", "multiprocess_dir"]
