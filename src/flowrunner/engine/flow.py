"""``Flow``: walks a node graph by action, and is itself a node so flows nest.

Routing: an action of ``None`` or ``""`` means ``"default"``. An action with no edge follows
``"default"`` when the node has one; otherwise the flow ends and the result records the action.
A node that raises (after retries and ``exec_fallback``) follows its ``"error"`` edge, with
``ctx.error`` describing the failure and ``ctx.input`` the failed node's input; without such an
edge the run raises ``NodeFailed``. An action wired with ``Node.end`` ends the flow there (for
``"error"``: the failure is handled, the output is None and the action ``"error"``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

from flowrunner.engine.context import CheckpointHook, Context, ErrorInfo, SizeCheck
from flowrunner.engine.events import Checkpoint, NodeEvent, Observer, RunResult
from flowrunner.engine.node import FLOW_END, Node
from flowrunner.engine.scoped import ScopedValues
from flowrunner.errors import ExecutionError, NodeFailed, NodeTimeout, StepLimitExceeded

__all__ = ["Flow"]

_perf = time.perf_counter
_now = time.time


class Flow(Node):
    """A graph of nodes starting at ``start``.

    Used as a node inside another flow, it runs its graph with the parent's ``shared`` dict and
    a child context (its own ``results``; ``input`` is what the parent hands it). Its output is
    the sub-flow's last output and its action the one that ended the sub-flow. A nested flow
    honours ``timeout``; ``retry`` and ``batch`` are refused (re-running a whole graph is a
    decision for the flow's author, not an implicit policy). Only the top-level flow calls the
    checkpoint hook, because only top-level nodes can be resumed with ``start_at``.
    """

    __slots__ = ("max_steps", "start")

    def __init__(
        self, start: Node, *, node_id: str = "flow", max_steps: int = 10_000, **kw: Any
    ) -> None:
        if max_steps < 1:
            raise ValueError(f"max_steps must be >= 1, got {max_steps}")
        super().__init__(node_id=node_id, **kw)
        if self._batch is not None or self._retry.max_retries:
            # Refused rather than ignored: a sub-flow with side effects must not be re-run or
            # fanned out by a policy its author may not have thought through.
            raise ValueError(f"flow {node_id!r}: retry and batch do not apply to a flow")
        self.start = start
        self.max_steps = max_steps

    def nodes(self) -> Mapping[str, Node]:
        """Every node reachable from ``start``, by id (two different nodes may not share one)."""
        found: dict[str, Node] = {}
        todo = [self.start]
        while todo:
            node = todo.pop()
            seen = found.get(node.node_id)
            if seen is node:
                continue
            if seen is not None:
                raise ValueError(f"two different nodes share the id {node.node_id!r}")
            found[node.node_id] = node
            todo.extend(n for n in reversed(node._successors.values()) if n is not FLOW_END)
            todo.extend(node.branches.values())
        return found

    async def run(
        self,
        input: Any = None,
        *,
        shared: dict[str, Any] | None = None,
        observer: Observer | None = None,
        execution: Mapping[str, Any] | None = None,
        start_at: str | None = None,
        results: dict[str, Any] | None = None,
        checkpoint: CheckpointHook | None = None,
        error: ErrorInfo | None = None,
        steps: int = 0,
        size_check: SizeCheck | None = None,
        scoped: ScopedValues | None = None,
    ) -> RunResult:
        """Run the flow once. ``shared`` and ``results`` are used (and mutated) in place.

        To resume from a checkpoint pass ``start_at`` (its ``next_node_id``), the stored
        ``shared`` and ``results``, ``input`` (the output the next node should see), and
        ``error``/``steps`` from the checkpoint so error handlers and the step limit carry on.
        ``size_check`` bounds every node's output (see ``SizeCheck``); one that raises fails
        the node like any exception, so an ``error`` edge can handle it. ``scoped`` holds
        the run-scoped values the caller provides to the nodes (see ``engine.scoped``).
        """
        if start_at is None:
            node = self.start
        else:
            found = self.nodes().get(start_at)
            if found is None:
                raise ExecutionError(f"cannot start at unknown node {start_at!r}", node_id=start_at)
            node = found
        ctx = Context(
            shared=shared,
            input=input,
            results=results,
            execution=execution,
            observer=observer,
            checkpoint=checkpoint,
            size_check=size_check,
            scoped=scoped,
        )
        ctx.error = error
        ctx.steps = steps
        ctx._walker = self
        output, action, last = await self._walk(ctx, node)
        return RunResult(output, action, last, ctx.shared, ctx.results, ctx.steps)

    async def _run(self, ctx: Context) -> tuple[Any, Any]:
        """This flow as a node of another flow."""
        child = ctx.child(self.node_id)
        child._walker = self
        timeout = self._timeout
        if timeout is None:
            output, action, _ = await self._walk(child, self.start)
            return output, action
        deadline = asyncio.timeout(timeout)
        try:
            async with deadline:
                output, action, _ = await self._walk(child, self.start)
        except TimeoutError as exc:
            if deadline.expired():
                raise NodeTimeout(self.node_id, timeout) from exc
            raise
        return output, action

    async def _walk(
        self, ctx: Context, node: Node, until: Node | None = None
    ) -> tuple[Any, str | None, str]:
        """Visit nodes from ``node`` until one has nowhere to go; (output, action, last id).

        With ``until`` (a branch of a fan-out, see ``branches``), the walk also stops before
        visiting that node, and returns what would have been its input.

        This loop is the engine's hot path: locals instead of attribute lookups, and no event
        objects or clock reads unless someone observes the run.
        """
        observer = ctx._observer
        checkpoint = ctx._checkpoint
        path = ctx._flow_path
        results = ctx.results
        max_steps = self.max_steps
        started = 0.0
        last_id = ctx._node_id
        last_action: str | None = None
        while True:
            if node is until:
                return ctx.input, last_action, last_id
            node_id = node.node_id
            steps = ctx.steps + 1
            if steps > max_steps:
                raise StepLimitExceeded(max_steps, node_id)
            ctx.steps = steps
            ctx._node_id = node_id
            node_input = ctx.input
            if observer is not None:
                observer(NodeEvent("started", node_id, _now(), flow_path=path))
                started = _perf()
            try:
                output, action = await node._run(ctx)
            except asyncio.CancelledError:
                if observer is not None:
                    observer(
                        NodeEvent(
                            "canceled",
                            node_id,
                            _now(),
                            attempt=ctx._attempt,
                            duration=_perf() - started,
                            flow_path=path,
                        )
                    )
                raise
            except Exception as exc:
                target = node._successors.get("error")
                ends = target is FLOW_END
                if ends:
                    target = None
                if observer is not None:
                    observer(
                        NodeEvent(
                            "failed",
                            node_id,
                            _now(),
                            attempt=ctx._attempt,
                            duration=_perf() - started,
                            error=exc,
                            action="error",
                            next_node_id=target.node_id if target else None,
                            flow_path=path,
                        )
                    )
                ctx._attempt = 1
                if target is None and not ends:
                    raise NodeFailed(node_id, exc, data=node_input) from exc
                ctx.error = ErrorInfo.from_exception(node_id, exc, node_input)
                ctx.input = node_input
                if checkpoint is not None:
                    await checkpoint(
                        Checkpoint(
                            node_id,
                            target.node_id if target is not None else None,
                            "error",
                            None,
                            ctx.shared,
                            results,
                            steps,
                            ctx.error,
                        )
                    )
                if target is None:  # the error edge ends the flow: the failure is handled
                    return None, "error", node_id
                last_id, last_action = node_id, "error"
                node = target
                continue

            ctx.error = None
            results[node_id] = output
            action = action or None
            successors = node._successors
            target = successors.get(action or "default") if successors else None
            if target is None and action is not None:
                target = successors.get("default")
            if target is FLOW_END:
                target = None
            if observer is not None:
                observer(
                    NodeEvent(
                        "finished",
                        node_id,
                        _now(),
                        attempt=ctx._attempt,
                        duration=_perf() - started,
                        output=output,
                        action=action,
                        next_node_id=target.node_id if target else None,
                        flow_path=path,
                    )
                )
            ctx._attempt = 1
            if checkpoint is not None:
                await checkpoint(
                    Checkpoint(
                        node_id,
                        target.node_id if target else None,
                        action,
                        output,
                        ctx.shared,
                        results,
                        steps,
                    )
                )
            if target is None:
                return output, action, node_id
            ctx.input = output
            last_id, last_action = node_id, action
            node = target
