"""Checks on the node graph: ``next`` targets, the start node, reachability, and the nodes
an agent runs as tools (``tool_refs``: reached through the agent, never through a ``next``).

A mixin of the validation ``Checker``: it reads ``data``/``nodes`` and reports through
``error``, so every problem lands in the same list with its position.
"""

from __future__ import annotations

import difflib
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from typing import Any

from flowrunner.definition.source import Path

# The original's reserved target: `next: {default: END}` ends the run there (compile.py wires
# it so), unless a node has that id.
END_TARGET = "END"
MAX_NAMED = 12  # candidates named in a message
# Finding the nodes that reach every other costs a walk per node; past this many nodes the
# message names them all (a flow this large is generated, and its author knows its start).
MAX_REACH_CHECKS = 500


class GraphChecks(ABC):
    data: Mapping[str, Any]
    nodes: dict[str, Mapping[str, Any]]
    # Nodes other nodes run as tools: tool node id → [(user node id, param path)]; filled by
    # the Checker from each node type's ``tool_nodes`` before ``check_graph``.
    tool_refs: dict[str, list[tuple[str, Path]]]

    @abstractmethod
    def error(
        self,
        path: Path,
        message: str,
        hint: str | None = None,
        *,
        key: bool = False,
        severity: str = "error",
    ) -> None:
        """Report a problem at ``path``; the Checker that mixes this in collects them."""

    def check_graph(self) -> str | None:
        """Check targets, find the start node and warn about unreachable nodes; the start."""
        self._check_targets()
        self._check_tool_nodes()
        start = self._find_start()
        if start is not None:
            self._check_reachable(start)
        return start

    def _close_ids(self, name: str) -> list[str]:
        return difflib.get_close_matches(name, list(self.nodes), n=1, cutoff=0.6)

    def _edges(self) -> Iterator[tuple[str, str, str]]:
        for node_id, node in self.nodes.items():
            nxt = node.get("next")
            if isinstance(nxt, Mapping):
                for action, target in nxt.items():
                    if isinstance(target, str):
                        yield node_id, str(action), target

    def _check_targets(self) -> None:
        for node_id, action, target in self._edges():
            if target in self.nodes or target == END_TARGET:
                continue  # END: the original's reserved target, ends the run
            close = self._close_ids(target) or ([END_TARGET] if target.upper() == "END" else [])
            mean = f" — did you mean '{close[0]}'?" if close else ""
            self.error(
                ("nodes", node_id, "next", action),
                f"next '{action}' points to unknown node '{target}'{mean}",
                None if close else _known(self.nodes),
            )

    def _check_tool_nodes(self) -> None:
        """A tool node runs when a model calls it, never as a step of the route: it has no
        ``next``, no ``next`` leads to it, it is not the start, and tools do not go round in
        a circle (an agent whose tool is an agent whose tool is the first)."""
        metadata = self.data.get("metadata")
        start = metadata.get("start") if isinstance(metadata, Mapping) else None
        routed = {target: (n, a) for n, a, target in self._edges()}
        for target, users in self.tool_refs.items():
            for user, path in users:
                if target == user:
                    self.error(path, f"node '{user}' cannot be its own tool")
                elif target not in self.nodes:
                    close = self._close_ids(target)
                    mean = f" — did you mean '{close[0]}'?" if close else ""
                    self.error(
                        path,
                        f"tool node '{target}' does not exist{mean}",
                        None if close else _known(self.nodes),
                    )
            if target not in self.nodes:
                continue
            user = users[0][0]
            nxt = self.nodes[target].get("next")
            if isinstance(nxt, Mapping) and nxt:
                self.error(
                    ("nodes", target, "next"),
                    f"node '{target}' is a tool of '{user}': it runs when the model calls it "
                    "and its result goes back to the model, so a next would never be taken",
                    "remove next (a tool's failure is told to the model, too)",
                    key=True,
                )
            if target in routed:
                source, action = routed[target]
                self.error(
                    ("nodes", source, "next", action),
                    f"next '{action}' leads to '{target}', a tool of '{user}': a tool node "
                    "runs only when the model calls it",
                    "route to another node, or give the route its own copy of the node",
                )
            if start == target:
                self.error(
                    ("metadata", "start"),
                    f"the start node '{target}' is a tool of '{user}': it cannot start the flow",
                )
        self._check_tool_cycles()

    def _check_tool_cycles(self) -> None:
        uses: dict[str, list[str]] = {}
        for target, users in self.tool_refs.items():
            for user, _ in users:
                if user != target:
                    uses.setdefault(user, []).append(target)
        reported: set[str] = set()
        for first in uses:
            todo: list[tuple[str, tuple[str, ...]]] = [(first, (first,))]
            seen = {first}
            while todo:
                here, chain = todo.pop()
                for target in uses.get(here, ()):
                    if target == first and first not in reported:
                        reported.update(chain)
                        self.error(
                            ("nodes", first, "params", "tools"),
                            "node tools go round in a circle: " + " → ".join((*chain, first)),
                            "an agent cannot reach itself through the tools of its tools",
                            key=True,
                        )
                    elif target not in seen:
                        seen.add(target)
                        todo.append((target, (*chain, target)))

    def _find_start(self) -> str | None:
        metadata = self.data.get("metadata")
        start = metadata.get("start") if isinstance(metadata, Mapping) else None
        if isinstance(start, str) and start:
            if start in self.nodes:
                return start
            close = self._close_ids(start)
            mean = f" — did you mean '{close[0]}'?" if close else ""
            self.error(
                ("metadata", "start"),
                f"start node '{start}' does not exist{mean}",
                None if close else _known(self.nodes),
            )
            return None
        if not self.nodes:
            return None
        # A tool node is reached through the agent that calls it, never a start.
        targets = {target for _, _, target in self._edges()} | set(self.tool_refs)
        candidates = [n for n in self.nodes if n not in targets]
        if len(candidates) == 1:
            return candidates[0]
        if not candidates:
            likely = self._reaching_all()
            names = ", ".join(f"'{c}'" for c in likely[:MAX_NAMED])
            more = f" (and {len(likely) - MAX_NAMED} more)" if len(likely) > MAX_NAMED else ""
            self.error(
                ("nodes",),
                "cannot find the start node: every node is the target of some next; "
                f"candidates (nodes every other node can be reached from): {names}{more}",
                f"set metadata.start to one of them, e.g. start: {likely[0]}",
                key=True,
            )
        else:
            names = ", ".join(f"'{c}'" for c in candidates)
            self.error(
                ("nodes",),
                f"cannot tell the start node: {names} are not the target of any next",
                f"set metadata.start to one of {names}",
                key=True,
            )
        return None

    def _reaching_all(self) -> list[str]:
        """Nodes from which every node can be reached, in file order (any of them can start a
        flow that loops back to its beginning); all nodes when none can, or the flow is too
        large to try each one."""
        ids = list(self.nodes)
        if len(ids) > MAX_REACH_CHECKS:
            return ids
        graph = self._graph()
        found = [n for n in ids if len(_reachable(graph, n, self.nodes)) == len(ids)]
        return found or ids

    def _graph(self) -> dict[str, list[str]]:
        graph: dict[str, list[str]] = {}
        for node_id, _, target in self._edges():
            graph.setdefault(node_id, []).append(target)
        for target, users in self.tool_refs.items():
            for user, _ in users:
                graph.setdefault(user, []).append(target)
        return graph

    def _check_reachable(self, start: str) -> None:
        seen = _reachable(self._graph(), start, self.nodes)
        for node_id in self.nodes:
            if node_id not in seen:
                self.error(
                    ("nodes", node_id),
                    f"node '{node_id}' is unreachable from the start node '{start}'",
                    "connect it with a next, or remove it",
                    key=True,
                    severity="warning",
                )


def _reachable(graph: Mapping[str, list[str]], start: str, nodes: Mapping[str, Any]) -> set[str]:
    seen = {start}
    todo = [start]
    while todo:
        for target in graph.get(todo.pop(), ()):
            if target in nodes and target not in seen:
                seen.add(target)
                todo.append(target)
    return seen


def _known(nodes: Mapping[str, Any]) -> str | None:
    ids = list(nodes)
    return f"nodes are: {', '.join(ids)}" if len(ids) <= 12 else None
