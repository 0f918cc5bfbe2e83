"""The recorder: turns one run's engine events into stored, published events and checkpoints.

The engine's observer is synchronous and called on every node transition, so events are
buffered and written in batches: at a checkpoint (after a top-level node) the buffer and the
checkpoint go to the store in one atomic write (``record_step``), durable before the next
node starts. Between two replayable nodes (``set``, ``transform``...: no effect outside the
run) the checkpoint may be left out for a short window (``_skippable``), so a run of such
nodes is stored by its final write alone. A node that runs long still shows up live: a short
timer flushes whatever is buffered (its ``started`` event, its logs) without waiting for the
node to finish.

A crash before that write leaves neither the node's events nor its checkpoint, so the node
runs again on resume: at-least-once per node. (Events a timer flushed while the node ran are
stored already, so the history shows both attempts.)

A finished node's output is measured, copied and sealed for the checkpoint once, at the first
checkpoint that holds it; the later checkpoints of the run reuse that copy as long as the run
still holds the very same object under that key (a node that runs again gives a new one). So
a ten-node run copies ten outputs, not 1 + 2 + ... + 10, and a checkpoint holds each output as
its node returned it (a Python node that changes an earlier output in place changes the run's
``results``, not that output's stored copy).

Every write also says where the run is: its ``progress`` (the share of nodes its last
checkpoint shows done) and its ``current_node`` (the top-level node running, or next), kept on
the execution record for whoever reads it, until the run ends (``settle``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol, TypeVar

import structlog

from flowrunner.engine import Checkpoint, NodeEvent
from flowrunner.executions.bus import EventBus
from flowrunner.executions.checkpoint_refs import Packer, is_node_result
from flowrunner.executions.events import STREAM, node_event
from flowrunner.executions.llm_usage import RunUsage
from flowrunner.executions.payloads import to_json
from flowrunner.executions.sealing import Sealer
from flowrunner.executions.sizes import RunLimits
from flowrunner.executions.states import transition
from flowrunner.secrets import Masker
from flowrunner.storage import (
    Execution,
    ExecutionEvent,
    ExecutionStore,
    NewCheckpoint,
    NewDelivery,
    NewEvent,
)
from flowrunner.storage.records import appended, utcnow

log = logging.getLogger(__name__)

FLUSH_DELAY = 0.1

T = TypeVar("T")


class StepOutbox(Protocol):
    """Webhook outbox entries for the events of one step (``webhooks.EventOutbox`` bound to a
    run), and the signal that they were committed."""

    async def entries(self, events: Sequence[NewEvent]) -> list[NewDelivery]: ...

    def committed(self) -> None: ...


class Recorder:
    """Buffers, stores and publishes the events of one execution; saves its checkpoints."""

    def __init__(
        self,
        store: ExecutionStore,
        bus: EventBus,
        execution: Execution,
        masker: Masker,
        *,
        payload_limit: int,
        limits: RunLimits,
        node_count: int,
        should_suspend: Callable[[], bool] = lambda: False,
        sealer: Sealer | None = None,
        outbox: StepOutbox | None = None,
        replayable: frozenset[str] = frozenset(),
        checkpoint_window: float = 0.0,
        start: tuple[datetime, list[NewDelivery]] | None = None,
    ) -> None:
        self._store = store
        # Checkpoints between two replayable nodes are skipped while the last one written is
        # younger than the window (see ``_skippable``).
        self._replayable = replayable
        self._window = checkpoint_window
        self._saved_at = time.monotonic()
        # The webhook events of a step's node events, written in the step's own write.
        self._outbox = outbox
        self._bus = bus
        self._execution = execution
        self._masker = masker
        self._sealer = sealer or Sealer(masker, None)
        self._limit = payload_limit
        self._limits = limits
        self._node_count = node_count
        self._buffer: list[NewEvent] = []
        self._lock = asyncio.Lock()
        self._timer: asyncio.TimerHandle | None = None
        self._pending: set[asyncio.Task[None]] = set()
        self._should_suspend = should_suspend
        self.last_seq = execution.last_event_seq
        self._packer = Packer(execution.input)  # big values once per checkpoint, by reference
        # Node id -> (its output object, JSON size, sealed copy), for the next checkpoints.
        self._copies: dict[str, tuple[Any, int, Any]] = {}
        # Where the run is, for the next write: progress at the last checkpoint and the
        # top-level node running now (None: not known yet, the record keeps what it has).
        self.progress: float | None = None
        self._at: str | None = None
        self._stored: tuple[float | None, str | None] = (None, None)  # as last written
        self._ended = False
        # The run's model-call usage (executions/llm_usage.RunUsage), kept in the resume data.
        self.usage: RunUsage | None = None
        # A queued run's ``running`` move (when, and its webhook entries), left to this
        # recorder's first write: stored just before it, or, when that is the final write,
        # in it (``take_start``). The runner leaves it only when the first node is
        # replayable: a node with an effect starts after a stored checkpoint, which stores
        # the move first, so no such node runs while the record still says ``queued``.
        self._start = start

    @property
    def execution(self) -> Execution:
        """The run's record as this recorder last stored it (its status among others)."""
        return self._execution

    def take_start(self) -> tuple[datetime, list[NewDelivery]] | None:
        """The ``running`` move still to store, for the final write to store it with the
        run's end; the caller stores it (the recorder forgets it)."""
        start, self._start = self._start, None
        return start

    async def _store_start(self) -> None:
        if self._start is None:
            return
        at, outbox = self._start
        self._execution = await uninterrupted(
            transition(self._store, self._execution, "running", now=at, outbox=outbox)
        )
        self._start = None
        if outbox and self._outbox is not None:
            self._outbox.committed()

    # --- the engine side -------------------------------------------------------------------

    def observe(self, event: NodeEvent) -> None:
        """The engine observer: buffer, and make sure a slow node's events still go out."""
        self._buffer.append(node_event(event, self._masker, self._limit))
        if not event.flow_path and event.kind != "log":
            if event.kind in ("finished", "failed"):
                self._at = event.next_node_id or self._at
            else:
                self._at = event.node_id
            if event.kind == "started":
                # Log lines of the node's own code (a plugin using structlog) name the node.
                structlog.contextvars.bind_contextvars(node_id=event.node_id)
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(FLUSH_DELAY, self._on_timer)

    def live(self, node_id: str, data: Mapping[str, Any]) -> None:
        """Publish a live-only ``stream`` event (nodes.live.LIVE_SINK): to subscribers now,
        never to the store. Its ``seq`` is the last stored one: it takes no place in the
        history, and followers pass it through without counting it as a gap."""
        payload = dict(data)
        if isinstance(payload.get("delta"), str):
            payload["delta"] = self._masker.mask_text(payload["delta"])
        event = ExecutionEvent(
            self._execution.id,
            self._execution.account_id,
            self.last_seq,
            STREAM,
            payload,
            utcnow(),
        )
        task = asyncio.get_running_loop().create_task(
            self._bus.publish(self._execution.flow_id, [event])
        )
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def checkpoint(self, point: Checkpoint) -> None:
        """The engine checkpoint hook: events, then the resumable state, both durable.

        After the last node there is nothing to resume: its events go out with the run's
        final event and status instead, in the one write of ``end`` (a crash before it
        re-runs that node on resume; after it, the run is finished with all its events).

        The shared state and the whole checkpoint are measured against their caps before
        they are copied (``SizeLimitExceeded`` naming the node that just ran fails the run).
        """
        if point.next_node_id is None:
            return
        if self._skippable(point):
            # The shared state's cap holds after every node, checkpoint or not (the
            # checkpoint's own cap is checked at the next one written, within the window).
            self._limits.check_shared(point.shared, point.node_id)
            return
        seal = self._sealer.seal
        error = point.error.as_dict() if point.error is not None else None
        resume: dict[str, Any] = {
            "last_node": point.node_id,
            "steps": point.steps,
            "total": self._node_count,
            # The error an error edge carries names the failure: it may quote a secret.
            "error": seal(to_json(error)) if error is not None else None,
        }
        # Measured against the caps as they are copied (nothing over a cap is copied); then
        # secret-holding parts are sealed (encrypted), the rest stays readable JSON.
        limits = self._limits
        used, shared = limits.shared_copy(point.shared, point.node_id)
        known, fresh = self._copies, []
        for key, value in point.results.items():
            entry = known.get(key)
            if entry is not None and entry[0] is value:
                used += len(key) + 4 + entry[1]  # as checkpoint_parts counts it
            else:
                fresh.append((key, value))
        sizes: dict[str, int] = {}
        copied = limits.checkpoint_parts(fresh, used, point.node_id, sizes=sizes)
        for key, value in fresh:
            known[key] = (value, sizes[key], seal(copied[key]))
        results = {key: known[key][2] for key in point.results}
        if self.usage is not None and self.usage.used:
            resume["usage"] = self.usage.snapshot()
        self.progress = checkpoint_progress(results, resume)
        shared = seal(shared)
        shared, results = self._packer.pack(shared, results)
        saved = NewCheckpoint(
            shared=shared, next_node=point.next_node_id, results=results, resume=resume
        )
        await self._write(saved)
        self._saved_at = time.monotonic()
        if self._should_suspend():
            raise Suspended(point.next_node_id)

    def _skippable(self, point: Checkpoint) -> bool:
        """Whether this checkpoint may be left out: it lies between two replayable nodes
        (``DefinedNode.replayable``: they only compute from the run's state), the last
        checkpoint written is younger than the window, and nobody asked the run to stop.

        A crash before the next write then resumes the run at an earlier checkpoint, and
        the run computes those nodes again, which changes nothing outside it: every node
        with an effect (an HTTP call, an email, a wait, a sub-flow...) still starts from a
        stored checkpoint taken right before it, and has its own stored right after it. The
        skipped nodes' events wait in the buffer for the next write (or the flush timer),
        so a flow of such nodes costs one store write at its end instead of one a node.
        """
        return (
            point.error is None
            and point.node_id in self._replayable
            and point.next_node_id in self._replayable
            and time.monotonic() - self._saved_at < self._window
            and not self._should_suspend()
        )

    # --- writing ---------------------------------------------------------------------------

    def add(self, event: NewEvent) -> None:
        self._buffer.append(event)

    async def emit(self, event: NewEvent) -> None:
        """Store and publish one event now (status changes)."""
        self._buffer.append(event)
        await self.flush()

    async def flush(self) -> list[ExecutionEvent]:
        return await self._write(None)

    async def _write(self, saved: NewCheckpoint | None) -> list[ExecutionEvent]:
        """Buffered events, and the checkpoint if given, in one store write (``record_step``)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        async with self._lock:
            if not self._buffer and saved is None:
                return []
            await self._store_start()
            batch, self._buffer = self._buffer, []
            # Where the run is, if that changed since the last write (None: as it was).
            position = (None, None) if self._ended else (self.progress, self._at)
            progress = position[0] if position[0] != self._stored[0] else None
            at = position[1] if position[1] != self._stored[1] else None
            try:
                outbox = await self._outbox.entries(batch) if self._outbox else []
            except BaseException:
                self._buffer[:0] = batch
                raise
            # Passed only when there is some: the common call stays the plain one.
            extra = {"outbox": outbox} if outbox else {}
            write = asyncio.ensure_future(
                self._store.record_step(
                    self._execution.account_id,
                    self._execution.id,
                    batch,
                    checkpoint=saved,
                    progress=progress,
                    current_node=at,
                    **extra,
                )
            )
            try:
                stored = await uninterrupted(write)
            except asyncio.CancelledError:
                if write.cancelled() or write.exception() is not None:
                    self._buffer[:0] = batch
                elif write.result():  # stored before the cancel took effect: publish, stop
                    self.last_seq = write.result()[-1].seq
                    await self._bus.publish(self._execution.flow_id, write.result())
                raise
            except BaseException:
                self._buffer[:0] = batch  # keep them for the next flush
                raise
            if stored:
                self.last_seq = stored[-1].seq
            if not self._ended:
                self._stored = position
            if outbox and self._outbox is not None:
                self._outbox.committed()
        if stored:
            await self._bus.publish(self._execution.flow_id, stored)
        return stored

    async def end(
        self,
        final: NewEvent,
        write: Callable[[list[NewEvent], list[NewDelivery]], Awaitable[Execution]],
    ) -> Execution:
        """The run's last write: the buffered events and ``final`` go to ``write`` (the final
        status change, ``transition(..., events=, outbox=)``) with the webhook entries of the
        buffered node events, so the status and the events are stored together or not at
        all. If ``write`` fails (``Conflict``: a racing cancel ended the run first), the
        buffered events stay buffered, without ``final``, for ``close`` to store."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._pending:  # timer flushes in flight are stored first: events keep their order
            await asyncio.gather(*self._pending, return_exceptions=True)
        async with self._lock:
            batch, self._buffer = [*self._buffer, final], []
            try:
                outbox = await self._outbox.entries(batch) if self._outbox else []
            except BaseException:
                self._buffer[:0] = batch[:-1]
                raise
            task = asyncio.ensure_future(write(batch, outbox))
            try:
                done = await uninterrupted(task)
            except asyncio.CancelledError:
                if task.cancelled() or task.exception() is not None:
                    self._buffer[:0] = batch[:-1]
                else:  # stored before the cancel took effect: publish, stop
                    stored = appended(task.result(), batch)
                    self.last_seq = stored[-1].seq
                    await self._bus.publish(self._execution.flow_id, stored)
                raise
            except BaseException:
                self._buffer[:0] = batch[:-1]
                raise
            stored = appended(done, batch)
            self.last_seq = stored[-1].seq
            if outbox and self._outbox is not None:
                self._outbox.committed()
        await self._bus.publish(self._execution.flow_id, stored)
        return done

    async def settle(self) -> None:
        """The run is ending: no later write moves its position (its final status clears
        ``current_node``), and none still in flight does either."""
        self._ended = True
        async with self._lock:
            pass  # a write that took the lock before this wrote its position already

    async def close(self) -> None:
        """Write what is left and wait for timer flushes in flight."""
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)
        await self.flush()

    def _on_timer(self) -> None:
        self._timer = None
        task = asyncio.get_running_loop().create_task(self._flush_quietly())
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _flush_quietly(self) -> None:
        try:
            await self.flush()
        except Exception:
            # Kept in the buffer; the checkpoint's flush retries and fails the run if the
            # store is really gone.
            log.warning("deferred event flush failed", exc_info=True)


async def uninterrupted(write: Awaitable[T]) -> T:
    """Await a store write to its end even when the caller is canceled meanwhile (the cancel
    is re-raised after): a write cut off mid-transaction would leave its connection checked
    out and its outcome unknown. Cancels interrupt nodes, never the recording of them."""
    task = asyncio.ensure_future(write)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        await asyncio.wait([task])
        raise


class Suspended(Exception):
    """Raised by the checkpoint hook when the executor shuts down: the run stops cleanly at a
    node boundary, its checkpoint saved, and resumes elsewhere from ``next_node``."""

    def __init__(self, next_node: str) -> None:
        super().__init__(next_node)
        self.next_node = next_node


def checkpoint_progress(results: Mapping[str, Any], resume: Mapping[str, Any]) -> float:
    """The share of the flow's nodes a checkpoint's ``results`` show as done (``resume``
    holds the flow's node count); below 1.0, which only a completed run reaches."""
    done = len([k for k in results if is_node_result(k)])
    total = max(int(resume.get("total") or 1), 1)
    return min(done / total, 0.99)
