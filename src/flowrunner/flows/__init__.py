"""The flow registry: per-account flows, immutable versions, search, diff and restore."""

from flowrunner.flows.checking import FlowChecker
from flowrunner.flows.registry import AuditSink, FlowFilters, FlowRegistry, SavedFlow

__all__ = ["AuditSink", "FlowChecker", "FlowFilters", "FlowRegistry", "SavedFlow"]
