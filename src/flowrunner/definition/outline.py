"""``flow_outline(text)``: the shape of a flow for drawing it — nodes, labelled edges, the start.

Read from the parsed YAML, not from a loaded definition: a stored flow may name node types of a
plugin this process has not loaded, and a picture of the graph needs none of them. The start is
found as validation finds it (``metadata.start``, else the one node no ``next`` points to and
no agent runs as a tool);
``None`` when that is ambiguous.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flowrunner.definition.graph import END_TARGET
from flowrunner.definition.source import SourceError, parse_yaml
from flowrunner.errors import InvalidInput

__all__ = ["EdgeOutline", "FlowOutline", "NodeOutline", "flow_outline"]


@dataclass(frozen=True, slots=True)
class NodeOutline:
    id: str
    type: str
    description: str | None
    retries: int  # max_retries; 0 for none
    batch: str | None  # the batch strategy, when the node runs a batch
    timeout: str | None  # as written ("30s")
    line: int | None


@dataclass(frozen=True, slots=True)
class EdgeOutline:
    source: str
    target: str  # a node id, or END
    action: str


@dataclass(frozen=True, slots=True)
class FlowOutline:
    name: str
    start: str | None
    nodes: tuple[NodeOutline, ...]
    edges: tuple[EdgeOutline, ...]


def flow_outline(text: str) -> FlowOutline:
    """The outline of a flow's YAML; InvalidInput when it is not YAML of a mapping."""
    try:
        parsed = parse_yaml(text)
    except SourceError as exc:
        raise InvalidInput(f"the flow's YAML does not parse: {exc.problem.message}") from exc
    data = parsed.data
    if not isinstance(data, Mapping):
        raise InvalidInput("the flow's YAML is not a mapping")
    metadata = _mapping(data.get("metadata"))
    raw_nodes = {str(k): _mapping(v) for k, v in _mapping(data.get("nodes")).items()}
    nodes = tuple(
        _node(node_id, node, (parsed.positions.key(("nodes", node_id)) or (None, None))[0])
        for node_id, node in raw_nodes.items()
    )
    edges = tuple(
        EdgeOutline(node_id, str(target), str(action))
        for node_id, node in raw_nodes.items()
        for action, target in _mapping(node.get("next")).items()
        if isinstance(target, str)
    )
    return FlowOutline(
        name=str(metadata.get("name") or ""),
        start=_start(metadata, raw_nodes, edges),
        nodes=nodes,
        edges=edges,
    )


def _mapping(value: Any) -> Mapping[Any, Any]:
    return value if isinstance(value, Mapping) else {}


def _node(node_id: str, node: Mapping[str, Any], line: int | None) -> NodeOutline:
    retry = _mapping(node.get("retry"))
    retries = retry.get("max_retries", 0)
    batch = node.get("batch")
    strategy: str | None = None
    if isinstance(batch, Mapping):
        strategy = str(batch.get("strategy") or "serial")
    elif batch:
        strategy = "serial"
    timeout = node.get("timeout")
    description = node.get("description")
    return NodeOutline(
        id=node_id,
        type=str(node.get("type") or "?"),
        description=description if isinstance(description, str) else None,
        retries=retries if isinstance(retries, int) and not isinstance(retries, bool) else 0,
        batch=strategy,
        timeout=None if timeout is None else str(timeout),
        line=line,
    )


def _start(
    metadata: Mapping[str, Any],
    nodes: Mapping[str, Any],
    edges: tuple[EdgeOutline, ...],
) -> str | None:
    named = metadata.get("start")
    if isinstance(named, str) and named:
        return named if named in nodes else None
    targets = {e.target for e in edges if e.target != END_TARGET} | _tool_nodes(nodes)
    candidates = [n for n in nodes if n not in targets]
    return candidates[0] if len(candidates) == 1 else None


def _tool_nodes(nodes: Mapping[str, Any]) -> set[str]:
    """Nodes an agent runs as tools (``tools: [{node: id}]``): reached through it, no start."""
    found: set[str] = set()
    for node in nodes.values():
        tools = _mapping(_mapping(node).get("params")).get("tools")
        for tool in tools if isinstance(tools, list) else ():
            target = _mapping(tool).get("node")
            if isinstance(target, str):
                found.add(target)
    return found
