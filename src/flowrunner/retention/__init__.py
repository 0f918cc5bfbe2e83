"""Execution retention: how long finished runs are kept, and the pruner that deletes the rest
(docs/operations.md#retention)."""

from flowrunner.retention.policy import PolicyStore, RetentionPolicy, Rule
from flowrunner.retention.pruner import Pruned, Pruner

__all__ = ["PolicyStore", "Pruned", "Pruner", "RetentionPolicy", "Rule"]
