"""What a node type is built from: the node as written, and what building may use.

A leaf of the node layer (it imports no other part of Flowrunner at run time): the loader
(``definition``) produces these, the registry's ``NodeType.build`` receives them, and node
types read them, without any of them importing the others for it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from flowrunner.engine import Flow, Node
    from flowrunner.scripting.host import ScriptHost

__all__ = ["BatchSpec", "BuildEnv", "NodeSpec", "RetrySpec", "Sibling"]


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
class Sibling:
    """Another node of the same flow, as a node that runs it (an agent's node tool) sees it."""

    spec: NodeSpec
    params_schema: Mapping[str, Any]  # its node type's
    type_description: str
    code_params: frozenset[str]
    # A fresh engine node built from ``spec``, connected to nothing: run on its own, its
    # ``next`` is never followed.
    node: Node


@dataclass(frozen=True, slots=True)
class BuildEnv:
    """What a node type may use while building its engine node (once, at compile time).

    Nothing here is per run: what a run provides (its secrets, a host for stored flows) is
    read from the run's context during a visit (``Context.scoped``, see ``engine.scoped``).
    """

    # The JavaScript host (the sandbox) for ``${...}`` expressions, hooks and scripts; None
    # when the flow is compiled without one.
    scripts: ScriptHost | None = None
    base_path: Path | None = None
    # Compiles another flow file (relative to base_path) into an engine node: for `flow` nodes.
    load_subflow: Callable[[str], Flow] | None = None
    # Builds another node of this flow, by id, for a node that runs it itself (an agent's
    # node tools); None when the flow is compiled without one.
    sibling: Callable[[str], Sibling] | None = None
