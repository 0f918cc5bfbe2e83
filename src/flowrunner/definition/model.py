"""The typed, immutable form of a flow file (what ``load_flow`` returns).

The per-node types (``NodeSpec``, ``RetrySpec``, ``BatchSpec``) live in ``nodes.spec``, the
leaf that node types build from; ``flowrunner.definition`` names them too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from flowrunner.definition.triggers import TriggerSpec
from flowrunner.errors import Problem
from flowrunner.nodes.spec import NodeSpec

__all__ = ["FlowDefinition", "Metadata", "freeze"]


@dataclass(frozen=True, slots=True)
class Metadata:
    name: str
    description: str | None = None
    version: str | None = None
    start: str | None = None
    webhooks: tuple[Mapping[str, Any], ...] = ()
    queue: str | None = None
    """The Celery queue its runs go to (``executor = celery``); None: the default one."""
    on_failure: str | None = None
    """``on_failure.flow``: the flow (name or id) a failed run of this flow starts."""


@dataclass(frozen=True, slots=True)
class FlowDefinition:
    """A validated flow: metadata, nodes in file order, the start node and any warnings."""

    metadata: Metadata
    nodes: Mapping[str, NodeSpec]
    start: str
    triggers: tuple[TriggerSpec, ...] = ()
    """``triggers:`` (and ``cron`` nodes): what starts the flow besides the API."""
    problems: tuple[Problem, ...] = ()  # warnings only: a definition with errors is never built
    source: str | None = None
    # Dotted path -> (line, column), for errors found later (compile time, sub-flows).
    positions: Mapping[str, tuple[int, int]] = field(
        default_factory=lambda: MappingProxyType({}), compare=False, repr=False
    )

    @property
    def name(self) -> str:
        return self.metadata.name

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]

    def position(self, path: str) -> tuple[int | None, int | None]:
        """Line and column of a dotted path, or of its nearest located ancestor."""
        while path:
            if path in self.positions:
                return self.positions[path]
            path = path.rpartition(".")[0]
        return (None, None)


def freeze(value: Any) -> Any:
    """Read-only deep copy of parsed YAML: mappings become MappingProxyType, lists tuples."""
    if isinstance(value, Mapping):
        return MappingProxyType({k: freeze(v) for k, v in value.items()})
    if isinstance(value, list | tuple):
        return tuple(freeze(v) for v in value)
    return value
