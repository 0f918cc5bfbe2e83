"""The API side of the Celery executor: runs are enqueued for ``flowrunner worker`` processes.

Order of a start (``ExecutionService.start``): the execution row is committed first, then
``submit`` publishes its task. So there is never a task for a run that does not exist. A run
waits in the broker *unleased* (no write per run for it), and recovery claims unleased runs
once they are ``queue_lease_seconds`` old, so a run whose task was never published is found
again:

- crash after the commit, before the publish (or the broker lost the message, or the run was
  parked by the cluster limits and Redis lost it): recovery enqueues it again once it is
  ``queue_lease_seconds`` old; that bound must exceed the longest a run may wait in the queue;
- the broker refuses the publish (down): the task is kept here and published again, with
  backoff, once it answers (bounded; past the bound, recovery covers it as above);
- a worker dies mid-run: its lease lapses after the lease TTL, recovery claims the run for the
  queue (owner ``QUEUE_OWNER``, good for ``queue_lease_seconds``) and enqueues it again.

A worker takes the run's lease (or turns the queue's into its own: ``worker.WorkerHost``);
from then on the lease decides who runs it, exactly as with the in-process executor.
Recovery here re-enqueues runs whose worker died (its lease lapsed) instead of running them.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from datetime import timedelta
from typing import TYPE_CHECKING

import structlog

from flowrunner.config import Settings
from flowrunner.definition import FlowDefinition
from flowrunner.errors import Conflict, ExecutionError, FlowrunnerError
from flowrunner.executions.celery_app import RUN_TASK, celery_app
from flowrunner.executions.follow import Follower
from flowrunner.executions.remote_cancel import RemoteCancel
from flowrunner.executions.states import is_terminal
from flowrunner.storage import Execution, Store
from flowrunner.storage.records import utcnow

if TYPE_CHECKING:
    from celery import Celery

    from flowrunner.executions.runtime import RunParts

log = structlog.get_logger("flowrunner.executions")

QUEUE_OWNER = "celery-queue"
"""The lease owner of a run waiting in the broker (any process may enqueue it again)."""
MAX_UNPUBLISHED = 10_000  # tasks kept for the broker's return; beyond, the queue lease covers
RETRY_FIRST, RETRY_MAX = 0.5, 5.0


class CeleryExecutor:
    """``submit`` enqueues; ``cancel`` reaches the worker through Redis; runs are never held
    here, so ``holds`` is False and ``wait`` returns at once (the service follows the run)."""

    def __init__(
        self,
        app: Celery,
        store: Store,
        parts: RunParts,
        cancels: RemoteCancel,
        *,
        default_queue: str,
        queue_lease: timedelta,
        cancel_wait: float,
    ) -> None:
        self.app = app
        self._store = store
        self._parts = parts
        self._cancels = cancels
        self._default_queue = default_queue
        self._queue_lease = queue_lease
        self._cancel_wait = cancel_wait
        self._follower = Follower(store, parts.bus)
        self._unpublished: deque[tuple[Execution, str]] = deque()
        self._republisher: asyncio.Task[None] | None = None
        self._closing = False

    @classmethod
    def from_settings(cls, settings: Settings, store: Store, parts: RunParts) -> CeleryExecutor:
        assert settings.event_bus_url is not None  # celery_app refuses to build without it
        return cls(
            celery_app(settings),
            store,
            parts,
            RemoteCancel(settings.event_bus_url, timeout=settings.event_bus_timeout_seconds),
            default_queue=settings.default_queue,
            queue_lease=timedelta(seconds=settings.queue_lease_seconds),
            # A worker stops a canceled node at once; this bounds a worker that went silent.
            cancel_wait=max(5.0, settings.lease_ttl_seconds),
        )

    @property
    def owner(self) -> str:
        return QUEUE_OWNER

    def holds(self, execution_id: str) -> bool:
        return False

    async def wait(self, execution_id: str, within: float | None = None) -> Execution | None:
        return None

    async def submit(self, execution: Execution) -> bool:
        if self._closing:
            raise ExecutionError("the executor is shutting down", execution_id=execution.id)
        if execution.lease_owner == QUEUE_OWNER:  # claimed by recovery, for the queue
            try:
                execution = await self._store.executions.renew_lease(
                    execution.account_id, execution.id, owner=QUEUE_OWNER, ttl=self._queue_lease
                )
            except Conflict:
                return False  # a worker has it already
        queue = await self.queue_of(execution)
        await self._publish_or_keep(execution, queue)
        return True

    async def queue_of(self, execution: Execution) -> str:
        """The Celery queue the run's flow names (``queue:`` in its metadata), else the default."""
        try:
            compiled = await self._parts.flows.load(
                self._store.flows, execution.account_id, execution.flow_id, execution.flow_version
            )
        except FlowrunnerError:
            return self._default_queue  # the worker fails it, with the reason, in its history
        return queue_of(compiled.definition, self._default_queue)

    async def publish(self, account_id: str, execution_id: str, queue: str) -> None:
        """Publish one run task (broker I/O off the event loop); raises if the broker refuses."""
        await asyncio.to_thread(
            self.app.send_task, RUN_TASK, args=[account_id, execution_id], queue=queue
        )

    async def _publish_or_keep(self, execution: Execution, queue: str) -> None:
        try:
            await self.publish(execution.account_id, execution.id, queue)
        except Exception as exc:  # kombu/amqp/redis errors alike: the broker is unreachable
            log.warning(
                "broker refused a run; publishing it again when it answers",
                execution_id=execution.id,
                error=repr(exc),
            )
            if len(self._unpublished) < MAX_UNPUBLISHED:
                self._unpublished.append((execution, queue))
            if self._republisher is None or self._republisher.done():
                self._republisher = asyncio.get_running_loop().create_task(self._republish())

    async def _republish(self) -> None:
        delay = RETRY_FIRST
        while self._unpublished and not self._closing:
            await asyncio.sleep(delay)
            while self._unpublished:
                execution, queue = self._unpublished[0]
                try:
                    await self.publish(execution.account_id, execution.id, queue)
                except Exception:
                    delay = min(delay * 2, RETRY_MAX)
                    break
                self._unpublished.popleft()
                delay = RETRY_FIRST
        if self._unpublished:
            log.info("runs left for recovery to enqueue", count=len(self._unpublished))

    async def cancel(self, execution: Execution) -> Execution:
        """Tell the workers; wait for the run's worker to record it. A run no worker holds
        (queued in the broker, parked, or its worker died) is recorded here; a worker that
        picks its task up later finds it ended and drops it."""
        account_id = execution.account_id
        await self._cancels.request(execution.id)
        current = await self._store.executions.get(account_id, execution.id)
        if held_by_worker(current):
            deadline = time.monotonic() + self._cancel_wait
            current = await self._follower.until_end(account_id, execution.id, deadline)
            if is_terminal(current.status):
                return current
            log.warning("a worker did not stop a canceled run in time", execution_id=execution.id)
        return await self._parts.runner.record_canceled(current)

    async def shutdown(self, grace: float) -> None:
        """Publish nothing more (runs left unpublished are recovery's); nothing runs here."""
        self._closing = True
        if self._republisher is not None:
            self._republisher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._republisher
        await self._cancels.close()
        await asyncio.to_thread(self.app.close)


def queue_of(definition: FlowDefinition, default: str) -> str:
    return definition.metadata.queue or default


def held_by_worker(execution: Execution) -> bool:
    """Whether a worker's lease (not the queue's) on the run is still running."""
    return (
        execution.lease_owner not in (None, QUEUE_OWNER)
        and execution.lease_expires_at is not None
        and execution.lease_expires_at > utcnow()
    )
