"""Per-run state: the one mutable object a run owns, so node definitions never change."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, TypeVar, cast

from flowrunner.engine.events import Checkpoint, NodeEvent, Observer
from flowrunner.engine.scoped import RunScoped, ScopedValues

__all__ = ["CheckpointHook", "Context", "ErrorInfo", "SizeCheck"]

CheckpointHook = Callable[[Checkpoint], Awaitable[None]]

SizeCheck = Callable[[str, Any, int], int]
"""``(node_id, value, so_far) -> so_far + size of value``, raising to fail the node when the
total is too big. The engine calls it with a node's output before ``post``, and for a batch
node with each item's output as the item completes, so a fan-out is stopped at the item that
crosses the limit. What "size" means (and the limit) is the caller's business."""

_EMPTY: Mapping[str, Any] = MappingProxyType({})
_NO_SCOPED: ScopedValues = MappingProxyType({})

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    """What an ``error`` edge hands to the next node: who failed, how, and on what input."""

    node_id: str
    type: str
    message: str
    data: Any

    @classmethod
    def from_exception(cls, node_id: str, exc: BaseException, data: Any) -> ErrorInfo:
        return cls(node_id, type(exc).__name__, str(exc), data)

    def as_dict(self) -> dict[str, Any]:
        return {
            "node_id": self.node_id,
            "type": self.type,
            "message": self.message,
            "data": self.data,
        }


class Context:
    """The state of one run (or of one sub-flow visit, which gets a child context).

    ``shared`` is the run's mutable state, the same dict in every sub-flow. ``input`` is the
    previous node's output (the run input for the start node). ``results`` maps the id of
    every finished node to its output. ``error`` is set only while a node reached through an
    ``error`` edge runs. ``execution`` is read-only run metadata. ``steps`` counts node visits.
    ``scoped(key)`` reads a value the caller of the run provided for its nodes (see
    ``engine.scoped``): the run's secrets, say.
    """

    __slots__ = (
        "_attempt",
        "_checkpoint",
        "_flow_path",
        "_loop",
        "_loop_thread",
        "_node_id",
        "_observer",
        "_scoped",
        "_size_check",
        "_walker",
        "error",
        "execution",
        "input",
        "results",
        "shared",
        "steps",
    )

    def __init__(
        self,
        *,
        shared: dict[str, Any] | None = None,
        input: Any = None,
        results: dict[str, Any] | None = None,
        execution: Mapping[str, Any] | None = None,
        observer: Observer | None = None,
        checkpoint: CheckpointHook | None = None,
        flow_path: tuple[str, ...] = (),
        size_check: SizeCheck | None = None,
        scoped: ScopedValues | None = None,
    ) -> None:
        self.shared: dict[str, Any] = {} if shared is None else shared
        self.input: Any = input
        self.results: dict[str, Any] = {} if results is None else results
        self.error: ErrorInfo | None = None
        self.execution: Mapping[str, Any] = (
            _EMPTY if not execution else MappingProxyType(dict(execution))
        )
        self.steps = 0
        self._observer = observer
        self._checkpoint = checkpoint
        self._flow_path = flow_path
        self._size_check = size_check
        self._scoped: ScopedValues = _NO_SCOPED if not scoped else MappingProxyType(dict(scoped))
        self._node_id = ""
        # The Flow walking this context (set by the flow), for nodes that run branches.
        self._walker: Any = None
        # Attempts the current node's exec took; the retry loop writes it only when it retried.
        self._attempt = 1
        # The loop the run lives on, so a blocking node logging from its worker thread hands
        # the event to the observer on the loop thread (observers need not be thread-safe).
        try:
            self._loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            self._loop = None
        self._loop_thread = threading.get_ident()

    @property
    def node_id(self) -> str:
        """The id of the node running now."""
        return self._node_id

    @property
    def flow_path(self) -> tuple[str, ...]:
        """The ids of the enclosing sub-flow nodes, outermost first."""
        return self._flow_path

    @property
    def resumable(self) -> bool:
        """Whether the node visiting now can be resumed from a checkpoint (so may ``Pause``):
        a node of the top-level walk, which has the checkpoint hook; not a node of a
        sub-flow or of a fan-out branch."""
        return self._checkpoint is not None and not self._flow_path

    def scoped(self, key: RunScoped[T]) -> T:
        """The run-scoped value of ``key`` (its default when the run was given none)."""
        return cast(T, self._scoped.get(key, key.default))

    @property
    def size_check(self) -> SizeCheck | None:
        """What bounds each node's output in this run, to hand on to a flow it runs."""
        return self._size_check

    @property
    def scoped_values(self) -> ScopedValues:
        """Every run-scoped value of this run, to hand on to a flow it runs in turn."""
        return self._scoped

    def child(self, flow_node_id: str) -> Context:
        """The context for a sub-flow: same shared dict and observer, its own results."""
        sub = Context(
            shared=self.shared,
            input=self.input,
            observer=self._observer,
            flow_path=(*self._flow_path, flow_node_id),
            size_check=self._size_check,
        )
        sub.execution = self.execution
        sub._scoped = self._scoped
        return sub

    def log(self, message: str, *, level: str = "info", **fields: Any) -> None:
        """Emit a ``log`` event for the current node; a no-op when nobody observes the run."""
        if self._observer is not None:
            self.emit(
                NodeEvent(
                    "log",
                    self._node_id,
                    time.time(),
                    message=message,
                    level=level,
                    fields=fields,
                    flow_path=self._flow_path,
                )
            )

    def emit(self, event: NodeEvent) -> None:
        """Hand ``event`` to the observer, if any, always on the run's event-loop thread."""
        observer = self._observer
        if observer is None:
            return
        loop = self._loop
        if loop is not None and threading.get_ident() != self._loop_thread:
            loop.call_soon_threadsafe(observer, event)
        else:
            observer(event)
