"""The flow registry: per-account flows, immutable versions, search, diff and restore."""

from flowrunner.flows.registry import AuditSink, FlowFilters, FlowRegistry, SavedFlow

__all__ = ["AuditSink", "FlowFilters", "FlowRegistry", "SavedFlow"]
