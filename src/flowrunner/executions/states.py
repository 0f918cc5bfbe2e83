"""The one place that decides how an execution's status may change, and what else changes
with it.

``queued → running → completed | failed | canceled``; a queued run may also be canceled or
failed before it starts (its flow version cannot be compiled). A running run may park in a
durable wait, ``running → waiting``, holding no lease; the waker (its time came) or a signal
takes it back to ``running``, and a waiting run can be canceled (or failed). Terminal
statuses never change.
Every transition is a compare-and-set in the store, so two racing writers (a cancel request
and the runner finishing the run) cannot both win: the loser gets ``Conflict``.

Entering a terminal status also, in the same write: releases the lease (nobody runs the run
any more, so it is at no node either) and, for ``completed`` and ``canceled``, deletes the
checkpoint (nothing is left to resume; a failed run keeps it for a retry with resume). The
executor relies on this: a run that ended has no lease to hand back.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from flowrunner.errors import Conflict
from flowrunner.storage import Execution, ExecutionStore, NewDelivery, NewEvent
from flowrunner.storage.records import ExecutionStatus, JSONValue, utcnow

TERMINAL: frozenset[ExecutionStatus] = frozenset({"completed", "failed", "canceled"})

# target status -> the statuses it may be reached from
_SOURCES: dict[ExecutionStatus, tuple[ExecutionStatus, ...]] = {
    "queued": (),
    "running": ("queued", "waiting"),
    "waiting": ("running",),
    "completed": ("running",),
    "failed": ("queued", "running", "waiting"),
    "canceled": ("queued", "running", "waiting"),
}


# Terminal statuses after which no retry can resume the run from its checkpoint.
_DROPS_CHECKPOINT: frozenset[ExecutionStatus] = frozenset({"completed", "canceled"})


def is_terminal(status: str) -> bool:
    return status in TERMINAL


def allowed_sources(target: ExecutionStatus) -> tuple[ExecutionStatus, ...]:
    """The statuses from which ``target`` may be entered."""
    return _SOURCES[target]


def check_transition(
    current: ExecutionStatus,
    target: ExecutionStatus,
    *,
    execution_id: str,
    sources: Sequence[ExecutionStatus] | None = None,
) -> None:
    """``Conflict`` unless ``current → target`` is a legal move (from one of ``sources``, by
    default the statuses ``target`` may be entered from)."""
    if current not in (_SOURCES[target] if sources is None else sources):
        raise Conflict(
            f"execution is {current}, it cannot become {target}",
            execution_id=execution_id,
            status=current,
        )


async def transition(
    store: ExecutionStore,
    execution: Execution,
    target: ExecutionStatus,
    *,
    now: datetime | None = None,
    output: JSONValue = None,
    error: dict[str, Any] | None = None,
    outbox: Sequence[NewDelivery] = (),
    usage: Mapping[str, JSONValue] | None = None,
    wake_at: datetime | None = None,
    wait: Mapping[str, JSONValue] | None = None,
    events: Sequence[NewEvent] = (),
    started_at: datetime | None = None,
) -> Execution:
    """Move ``execution`` to ``target`` atomically, with the lease and checkpoint effects the
    module docstring lists; ``Conflict`` if it is no longer in a status the move is allowed
    from (someone else changed it first). A completed run's progress becomes 1.0; any other
    keeps what its runner recorded (``record_step``). ``outbox`` (the webhook events of the
    move) is written in the same atomic write, and so are ``events`` (a run's last events,
    its final one among them: stored with its final status or not at all). Entering
    ``waiting`` releases the lease too (nobody runs the run while it waits) and records
    ``wake_at`` and ``wait``.

    ``started_at`` says the run's ``running`` move was never stored on its own and goes into
    this write (a run that stored nothing between its start and its end, see the ``start``
    of ``executions.recorder.Recorder``): the move may then come from ``queued``."""
    sources = allowed_sources(target)
    if started_at is not None and "queued" not in sources:
        sources = ("queued", *sources)
    check_transition(execution.status, target, execution_id=execution.id, sources=sources)
    now = now or utcnow()
    if target == "running":
        started_at = now
    ends = target in TERMINAL
    finished_at = now if ends else None
    try:
        return await store.update(
            execution.account_id,
            execution.id,
            expected_status=sources,
            status=target,
            output=output,
            error=error,
            progress=1.0 if target == "completed" else None,
            started_at=started_at,
            finished_at=finished_at,
            usage=usage,
            release_lease=ends or target == "waiting",
            drop_checkpoint=target in _DROPS_CHECKPOINT,
            outbox=outbox,
            wake_at=wake_at,
            wait=wait,
            events=events,
        )
    except Conflict as exc:
        raise Conflict(
            f"execution changed concurrently, it cannot become {target}",
            execution_id=execution.id,
        ) from exc
