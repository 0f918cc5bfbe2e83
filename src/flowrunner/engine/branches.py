"""Fan-out inside a flow: run several branches of the graph at once, then carry on.

A node that fans out (a ``split``) calls ``run_branches`` from its ``exec``: every branch
starts at its own node and walks the graph as the flow would, until it reaches ``until`` (the
node where the branches meet, which the branch does not visit) or ends. Branches run
concurrently on the event loop, each with its own copy of ``shared`` and of ``results``;
when all have finished, the nodes they visited are added to the run's ``results`` and each
branch's output is returned, in the order the branches were given.

Bounds hold across branches: every node visit counts against the flow's step limit (one
counter for the run, shared by all branches), the first branch that fails cancels the others
and is raised once they have unwound, and cancelling the run cancels every branch.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flowrunner.engine.batch import all_or_cancel
from flowrunner.engine.context import Context

if TYPE_CHECKING:
    from flowrunner.engine.node import Node

__all__ = ["BranchResult", "run_branches"]


@dataclass(frozen=True, slots=True)
class BranchResult:
    """How one branch ended: its name, last output and action, and its copy of shared."""

    name: str
    output: Any
    action: str | None
    last_node_id: str
    shared: dict[str, Any]


async def run_branches(
    ctx: Context,
    branches: Mapping[str, Node],
    *,
    until: Node | None = None,
    copy_shared: Callable[[dict[str, Any]], dict[str, Any]] = copy.deepcopy,
) -> list[BranchResult]:
    """Run every branch (name → first node) from ``ctx`` at once; their results in order.

    Must be called while a ``Flow`` walks ``ctx`` (from a node's hooks): the branches are
    walked by that flow, with its step limit. Each branch's input is ``ctx.input``.
    """
    walker = ctx._walker
    if walker is None:
        raise RuntimeError("run_branches needs a context that a Flow is walking")
    before = ctx.results
    contexts = {name: _BranchContext(ctx, copy_shared(ctx.shared)) for name in branches}

    async def one(name: str, start: Node) -> BranchResult:
        sub = contexts[name]
        output, action, last = await walker._walk(sub, start, until)
        return BranchResult(name, output, action, last, sub.shared)

    loop = asyncio.get_running_loop()
    done = await all_or_cancel(
        [loop.create_task(one(name, start)) for name, start in branches.items()]
    )
    for sub in contexts.values():
        # What the branch visited (its own results start as a copy of the run's).
        before.update({k: v for k, v in sub.results.items() if before.get(k, _MISSING) is not v})
    return done


_MISSING = object()


class _BranchContext(Context):
    """A branch's context: its own shared and results; the run's step counter and observer.

    ``steps`` reads and writes the parent's counter, so concurrent branches count against one
    limit (the parent's walk is suspended in the fan-out node meanwhile, so nothing else
    touches it). No checkpoint hook: only whole top-level nodes are resumable.
    """

    __slots__ = ("_parent",)

    def __init__(self, parent: Context, shared: dict[str, Any]) -> None:
        self._parent = parent
        steps = parent.steps  # Context.__init__ zeroes steps, which here is the parent's
        super().__init__(
            shared=shared,
            input=parent.input,
            results=dict(parent.results),
            observer=parent._observer,
            flow_path=parent._flow_path,
            size_check=parent._size_check,
        )
        parent.steps = steps
        self.execution = parent.execution
        self._scoped = parent._scoped
        self._walker = parent._walker
        self._node_id = parent._node_id

    @property  # a slot on Context, a view of the parent's counter here
    def steps(self) -> int:
        return self._parent.steps

    @steps.setter
    def steps(self, value: int) -> None:
        self._parent.steps = value
