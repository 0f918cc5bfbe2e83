"""The run side of a ``flowrunner worker``: what one Celery task does with one run.

Celery calls tasks from its own threads (the ``threads`` pool); the runs themselves live on
one asyncio event loop of the process, in a ``LocalExecutor`` — the same runner, leases,
renewal and checkpoint hand-back as in an API process. A task blocks its Celery thread until
its run ended (or was handed back), so Celery acknowledges the message late, and a worker
killed mid-run leaves it unacknowledged for the broker to give to another worker.

``WorkerHost.handle`` decides what a message means, the store being the truth:
  - the run ended or does not exist: drop the message;
  - another worker holds its lease: drop (it runs it; if it dies, its lease lapses and
    recovery enqueues the run again);
  - its account (or flow) is at its cluster-wide limit: park it (``cluster_limits``);
  - else turn the queue lease into this worker's lease and run it (resumed from its last
    checkpoint if it had one).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import threading
from collections.abc import Coroutine
from concurrent.futures import Future
from typing import Any, TypeVar

import structlog

from flowrunner.config import Settings
from flowrunner.errors import Conflict, ExecutionError, NotFound, StorageError
from flowrunner.executions.celery_executor import QUEUE_OWNER, CeleryExecutor, held_by_worker
from flowrunner.executions.cluster_limits import ClusterLimits, Ticket
from flowrunner.executions.executor import EXPIRED, LocalExecutor
from flowrunner.executions.recovery import Recovery
from flowrunner.executions.redis_subscription import LinkErrors
from flowrunner.executions.remote_cancel import RemoteCancel
from flowrunner.executions.runtime import RunParts, unleased_after
from flowrunner.executions.states import is_terminal
from flowrunner.executions.waker import Waker
from flowrunner.storage import Store

log = structlog.get_logger("flowrunner.worker")

T = TypeVar("T")
REDIS_RETRY_SECONDS = 1.0


class Outcome(enum.Enum):
    DONE = "done"  # the run ended (here or before)
    DROPPED = "dropped"  # a duplicate: missing, or held by another worker
    PARKED = "parked"  # over a cluster limit: waits in Redis
    HANDED_BACK = "handed_back"  # this worker is stopping: the message goes back


class WorkerHost:
    """A worker process's executor, recovery, waker, cancel listener and cluster limits."""

    def __init__(
        self, settings: Settings, store: Store, parts: RunParts, *, concurrency: int
    ) -> None:
        self._settings = settings
        self._store = store
        self._runs = store.executions
        self.enqueuer = CeleryExecutor.from_settings(settings, store, parts)
        self.local = LocalExecutor(
            parts.runner,
            store.executions,
            concurrency=concurrency,  # as many as Celery threads: a task never waits here
            lease_ttl=parts.lease_ttl,
            owner=parts.owner,
        )
        self._ttl = parts.lease_ttl.total_seconds()
        assert settings.event_bus_url is not None  # celery_app refuses to build without it
        self.cancels = RemoteCancel(settings.event_bus_url)
        self.limits = ClusterLimits(
            settings.event_bus_url,
            per_account=settings.cluster_max_runs_per_account,
            per_flow=settings.cluster_max_runs_per_flow,
            ttl_seconds=self._ttl,
        )
        # Recovery from here too: a cluster of workers with no API process still resumes
        # (and enqueues) the runs a dead worker left; the claim is atomic, one sweeper wins.
        self._recovery = Recovery(
            store.executions,
            self.enqueuer,
            lease_ttl=parts.lease_ttl,
            interval=settings.recovery_interval_seconds,
            unleased_after=unleased_after(settings),
        )
        # And the waker: a cluster of workers with no API process still wakes its durable
        # waits when they are due (enqueued for any worker); the claim is atomic too.
        self._waker = Waker(
            store.executions,
            self.enqueuer,
            lease_ttl=parts.lease_ttl,
            tick=settings.waker_tick_seconds,
        )
        parts.on_failure.bind(self.enqueuer.submit)  # failure flows go through the broker too
        self._tickets: dict[str, Ticket] = {}
        self._upkeep: asyncio.Task[None] | None = None
        self._cancelling: set[asyncio.Task[Any]] = set()

    async def start(self) -> None:
        self.cancels.listen(self._on_cancel)
        self._recovery.start()
        self._waker.start()
        self._upkeep = asyncio.get_running_loop().create_task(self._keep_up())

    async def stop(self, grace: float) -> None:
        """Hand running runs back at their checkpoint (after ``grace``), then stop."""
        await self._waker.stop()
        await self._recovery.stop()
        await self.local.shutdown(grace)
        if self._upkeep is not None:
            self._upkeep.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._upkeep
        await self.cancels.close()
        await self.limits.close()
        await self.enqueuer.shutdown(grace)

    async def handle(self, account_id: str, execution_id: str) -> Outcome:
        try:
            execution = await self._runs.get(account_id, execution_id)
        except NotFound:
            return Outcome.DROPPED
        if is_terminal(execution.status) or execution.status == "waiting":
            return Outcome.DONE  # a durable wait: the waker enqueues it again when it is due
        if self.local.holds(execution_id):
            await self.local.wait(execution_id)
            return Outcome.DONE
        if held_by_worker(execution):
            return Outcome.DROPPED
        queue = await self.enqueuer.queue_of(execution)
        ticket = Ticket(account_id, execution_id, execution.flow_id, queue)
        try:
            if not await self.limits.take(ticket):
                log.info("run parked: cluster limit reached", execution_id=execution_id)
                return Outcome.PARKED
        except LinkErrors:
            # Redis (the limits) is away: give the message back a moment later rather than
            # run past the limits or drop the run.
            log.warning("cluster limits unreachable; run handed back", execution_id=execution_id)
            await asyncio.sleep(REDIS_RETRY_SECONDS)
            return Outcome.HANDED_BACK
        try:
            if execution.lease_owner == QUEUE_OWNER:
                # Recovery re-enqueued it under the queue's lease, which becomes this worker's:
                # expired, then taken. Anyone quicker in between (another copy of the
                # message, recovery) wins the run. A fresh run is unleased: taken at once.
                with contextlib.suppress(Conflict):
                    await self._runs.renew_lease(
                        account_id, execution_id, owner=QUEUE_OWNER, ttl=EXPIRED
                    )
            try:
                taken = await self.local.submit(execution)
            except ExecutionError:
                return Outcome.HANDED_BACK  # shutting down
            if not taken:
                return Outcome.DROPPED
            self._tickets[execution_id] = ticket
            await self.local.wait(execution_id)
        finally:
            self._tickets.pop(execution_id, None)
            try:
                await self._wake(await self.limits.release(ticket))
            except LinkErrors:  # its slot lapses unrenewed; the sweep wakes who waits
                log.warning("could not give a cluster slot back", execution_id=execution_id)
        current = await self._runs.get(account_id, execution_id)
        if is_terminal(current.status) or current.status == "waiting":
            return Outcome.DONE
        return Outcome.HANDED_BACK

    async def _on_cancel(self, execution_id: str) -> None:
        ticket = self._tickets.get(execution_id)
        if ticket is None or not self.local.holds(execution_id):
            return  # not running here (or still being taken: the API records the cancel)
        with contextlib.suppress(NotFound):
            execution = await self._runs.get(ticket.account_id, execution_id)
            log.info("cancel requested from another process", execution_id=execution_id)
            # In the background: the listener goes on with other requests meanwhile.
            self._cancelling.add(
                asyncio.get_running_loop().create_task(self.local.cancel(execution))
            )
            self._cancelling = {t for t in self._cancelling if not t.done()}

    async def _wake(self, tickets: list[Ticket]) -> None:
        for ticket in tickets:
            try:
                await self.enqueuer.publish(ticket.account_id, ticket.execution_id, ticket.queue)
            except Exception:  # the broker is down: the queue lease brings it back later
                log.warning("could not enqueue a parked run", execution_id=ticket.execution_id)

    async def _keep_up(self) -> None:
        """Renew the cluster slots of the runs held here; wake parked runs whose slots
        lapsed (a worker died) or whose wake-up was lost."""
        interval = max(self._ttl / 3, 0.05)
        while True:
            await asyncio.sleep(interval)
            try:
                await self.limits.renew(list(self._tickets.values()))
                await self._wake(await self.limits.due())
            except (*LinkErrors, StorageError):  # the next round tries again
                log.warning("cluster limit upkeep failed", exc_info=True)


class LoopThread:
    """An asyncio event loop on its own thread, for Celery's threads to hand coroutines to."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._main, name="flowrunner-loop", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def submit(self, coroutine: Coroutine[Any, Any, T]) -> Future[T]:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop)

    def call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return self.submit(coroutine).result()

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(30)
        self.loop.close()
