"""What a run tells the outside world: node events, checkpoints and the final result.

The engine never persists or publishes anything itself; the runner around it turns these
values into stored events, live streams and durable checkpoints.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from flowrunner.engine.context import ErrorInfo

__all__ = ["Checkpoint", "EventKind", "NodeEvent", "Observer", "RunResult"]

EventKind = Literal["started", "retrying", "finished", "failed", "canceled", "log"]


@dataclass(slots=True)
class NodeEvent:
    """One thing that happened to a node during a run.

    ``time`` is wall-clock (``time.time()``); ``duration`` (seconds, on ``finished`` and
    ``failed``) is measured with a monotonic clock. ``attempt`` is the attempt number a
    ``retrying`` event announces, and on ``finished``/``failed`` how many attempts ``exec``
    took. ``item_index`` names the batch item a ``retrying`` event is about. ``flow_path``
    holds the ids of the enclosing sub-flow nodes, outermost first.
    """

    kind: EventKind
    node_id: str
    time: float
    attempt: int = 1
    duration: float | None = None
    output: Any = None
    action: str | None = None
    next_node_id: str | None = None
    error: BaseException | None = None
    item_index: int | None = None
    message: str | None = None
    level: str | None = None
    fields: Mapping[str, Any] | None = None
    flow_path: tuple[str, ...] = ()


Observer = Callable[[NodeEvent], None]
"""Called synchronously for every event; it must be cheap and is never awaited.

It always runs on the run's event-loop thread: a ``log`` from a ``blocking=True`` node's worker
thread is handed over to the loop first. An exception it raises propagates into the run.
"""


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """The state after one top-level node, handed to the checkpoint hook before the next runs.

    ``shared`` and ``results`` are the run's live dicts (not copies, which would cost every
    node): a hook that keeps them past its own ``await`` must copy or serialise them first.
    ``error`` is set when the run is following an ``error`` edge to ``next_node_id``; pass it
    back to ``Flow.run(error=...)`` when resuming there.
    """

    node_id: str
    next_node_id: str | None
    action: str | None
    output: Any
    shared: dict[str, Any]
    results: dict[str, Any]
    steps: int
    error: ErrorInfo | None = None


@dataclass(frozen=True, slots=True)
class RunResult:
    """How a run ended: the last node's output and action, and the run's state."""

    output: Any
    action: str | None
    last_node_id: str
    shared: dict[str, Any]
    results: dict[str, Any]
    steps: int
