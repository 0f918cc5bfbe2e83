"""Fan-out and fan-in: ``split`` runs every branch at once, ``join`` combines their outputs.

Each ``next`` edge of a ``split`` (except ``error``) starts a branch. The branches run
concurrently, each with its own copy of ``shared`` and the split's input as input, until they
reach the ``join`` where they meet (found when the flow is compiled, see
``definition.fanout``). The split's output is ``{branch: last output}`` in ``next`` order; the
run then goes on at the join, whose output combines them by ``format``: ``array`` (the outputs
in order, the default), ``object`` (the outputs, mappings, merged; later branches win) or
``map`` (branch name → output). Writes a branch makes to its ``shared`` stay in that branch.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flowrunner.engine import Node, run_branches
from flowrunner.errors import ExecutionError
from flowrunner.expressions import thaw
from flowrunner.nodes.base import Call, DefinedNode, DefinedNodeType
from flowrunner.nodes.spec import BuildEnv

__all__ = ["FANOUT_TYPES", "JoinNode", "SplitNode"]


class SplitNode(DefinedNode):
    __slots__ = ("_fan", "_join")

    # Its edges are branches named by the author, and it never returns any of them.
    actions = None

    def setup(self, env: BuildEnv) -> None:
        self._fan: dict[str, Node] = {}
        self._join: Node | None = None

    def wire(self, branches: Mapping[str, Node], join: Node | None) -> None:
        """Set the branches and the node where they meet (compile time, once)."""
        self._fan = dict(branches)
        self._join = join

    @property
    def branches(self) -> Mapping[str, Node]:
        return self._fan

    @property
    def join(self) -> Node | None:
        return self._join

    async def work(self, call: Call) -> Any:
        done = await run_branches(call.ctx, self._fan, until=self._join, copy_shared=thaw)
        return {branch.name: branch.output for branch in done}


class JoinNode(DefinedNode):
    __slots__ = ()

    actions = frozenset()

    async def work(self, call: Call) -> Any:
        outputs = call.input
        if not isinstance(outputs, Mapping):
            raise ExecutionError(
                f"node '{self.node_id}': a join combines the outputs of a split's branches; "
                f"its input is not (got {type(outputs).__name__})",
                node_id=self.node_id,
            )
        how = call.params.get("format") or "array"
        if how == "map":
            return dict(outputs)
        if how == "array":
            return list(outputs.values())
        merged: dict[str, Any] = {}
        for name, output in outputs.items():
            if not isinstance(output, Mapping):
                raise ExecutionError(
                    f"node '{self.node_id}': format object merges mappings, and branch "
                    f"'{name}' output a {type(output).__name__}",
                    node_id=self.node_id,
                )
            merged.update(output)
        return merged


SPLIT = DefinedNodeType(
    "split",
    "Run every next edge (except error) as a branch at once, each with its own copy of "
    "shared; output = {branch: output}; the run goes on at the join where they meet.",
    SplitNode,
    {"type": "object", "properties": {}, "additionalProperties": False},
)
JOIN = DefinedNodeType(
    "join",
    "Combine a split's branch outputs: format array (default), object (merged) or map.",
    JoinNode,
    {
        "type": "object",
        "properties": {"format": {"enum": ["array", "object", "map"]}},
        "additionalProperties": False,
    },
)

# (type, aliases) of this module's built-ins.
FANOUT_TYPES: list[tuple[DefinedNodeType, tuple[str, ...]]] = [(SPLIT, ()), (JOIN, ())]
