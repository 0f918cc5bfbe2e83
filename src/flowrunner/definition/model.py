"""The typed, immutable form of a flow file (what ``load_flow`` returns)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from flowrunner.definition.triggers import TriggerSpec
from flowrunner.errors import Problem


@dataclass(frozen=True, slots=True)
class RetrySpec:
    max_retries: int = 0
    wait: float = 0.0
    backoff: Literal["fixed", "exponential"] = "fixed"
    max_wait: float | None = None
    jitter: float = 0.0


@dataclass(frozen=True, slots=True)
class BatchSpec:
    # An expression string ("${input.rows}") or a literal list (frozen); None: the node's
    # input is the items when it is a list (the original's batch without items).
    items: Any = None
    strategy: Literal["serial", "parallel", "worker_pool"] = "serial"
    max_parallel: int | None = None


@dataclass(frozen=True, slots=True)
class NodeSpec:
    """One node of a flow, as written (params still hold their ``${...}`` expressions)."""

    id: str
    type: str
    params: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    next: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    retry: RetrySpec | None = None
    batch: BatchSpec | None = None
    timeout: float | None = None
    hooks: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    description: str | None = None
    line: int | None = None
    column: int | None = None


@dataclass(frozen=True, slots=True)
class Metadata:
    name: str
    description: str | None = None
    version: str | None = None
    start: str | None = None
    webhooks: tuple[Mapping[str, Any], ...] = ()


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
