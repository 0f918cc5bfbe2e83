"""Executors decide where and when runs happen; the runner decides what a run does.

``Executor`` is the seam: the in-process ``LocalExecutor`` here, a Celery one later that
submits a task whose body calls the same ``Runner.run``. Whoever runs an execution holds its
lease in the store and renews it; a lease left to expire (a crashed process) is claimed by
``recovery`` and the run resumes from its last checkpoint. A run that ended holds no lease:
its final status released it (``states.transition``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

import structlog

from flowrunner.errors import Conflict, ExecutionError, NotFound, StorageError
from flowrunner.executions.runner import RunControl, Runner
from flowrunner.executions.states import is_terminal
from flowrunner.fairness import RUN_SLOT, FairSemaphore, Slot
from flowrunner.storage import Execution, ExecutionStore

log = structlog.get_logger("flowrunner.executions")

EXPIRED = timedelta(0)


class Executor(Protocol):
    @property
    def owner(self) -> str:
        """The lease owner name of this executor (unique per process)."""
        ...

    async def submit(self, execution: Execution) -> bool:
        """Take ``execution`` (queued, or running to resume); False if another owner holds
        it. Raises ``ExecutionError`` once shutting down."""
        ...

    async def cancel(self, execution: Execution) -> Execution:
        """Have the run recorded ``canceled`` and return it as it ended: stopped if this
        executor runs it (its runner records the cancel as it stops), else recorded by the
        runner for whoever had it (queued elsewhere, or its owner died). A run that ended
        first keeps its status."""
        ...

    def holds(self, execution_id: str) -> bool:
        """Whether this executor has the run (queued or running) right now."""
        ...

    async def wait(self, execution_id: str, within: float | None = None) -> Execution | None:
        """Until this executor is done with the run, or ``within`` seconds; at once if it
        does not hold it. The run as its final write stored it when this executor ran it to
        an end within the time (a caller need not read it back), else None."""
        ...

    async def shutdown(self, grace: float) -> None:
        """Take no new runs; let running nodes finish for up to ``grace`` seconds, then stop
        every run at its checkpoint and hand its lease back for recovery."""
        ...


def default_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{os.urandom(3).hex()}"


@dataclass(slots=True)
class _Run:
    execution: Execution
    control: RunControl = field(default_factory=RunControl)
    task: asyncio.Task[Execution] | None = None
    entered: bool = False
    """Its task took its first step: canceling the task now runs its handlers."""
    started: bool = False
    """It got a slot and went to the runner."""


class LocalExecutor:
    """Runs executions as tasks of this process, at most ``concurrency`` at once and at most
    ``per_account`` of one account, and keeps their leases alive while it has them.

    Waiting runs are admitted fairly between accounts (``flowrunner.fairness``): a freed
    slot goes to the waiting account running the fewest, round-robin among equals, and in
    arrival order within an account. A run sleeping in a ``delay`` node holds no slot; one
    waiting durably (``executions.waits``) is not here at all.
    """

    def __init__(
        self,
        runner: Runner,
        store: ExecutionStore,
        *,
        concurrency: int = 16,
        per_account: int | None = None,
        lease_ttl: timedelta = timedelta(seconds=30),
        owner: str | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be >= 1")
        self._runner = runner
        self._store = store
        self._slots = FairSemaphore(concurrency, per_key=per_account)
        self._ttl = lease_ttl
        self._owner = owner or default_owner()
        self._runs: dict[str, _Run] = {}
        self._closing = False
        self._renewer: asyncio.Task[None] | None = None
        # Stops the renewal loop between renewals: cancelling it mid-query would abandon a
        # database connection.
        self._stopping = asyncio.Event()

    @property
    def owner(self) -> str:
        return self._owner

    @property
    def active(self) -> int:
        """Runs this executor holds, queued or running."""
        return len(self._runs)

    @property
    def queued(self) -> int:
        """Runs this executor holds that have not had a slot yet: the depth of its queue."""
        return sum(1 for run in self._runs.values() if not run.started)

    def holds(self, execution_id: str) -> bool:
        return execution_id in self._runs

    async def submit(self, execution: Execution) -> bool:
        if self._closing:
            raise ExecutionError("the executor is shutting down", execution_id=execution.id)
        if execution.id in self._runs:
            return True
        if not self._leased(execution):
            try:
                execution = await self._store.acquire_lease(
                    execution.account_id, execution.id, owner=self._owner, ttl=self._ttl
                )
            except Conflict:
                return False
        run = _Run(execution)
        self._runs[execution.id] = run
        run.task = asyncio.get_running_loop().create_task(self._run(run))
        if self._renewer is None:
            self._renewer = asyncio.get_running_loop().create_task(self._renew_forever())
        return True

    def _leased(self, execution: Execution) -> bool:
        """Whether ``execution`` comes holding this executor's live lease (created with it, or
        just claimed by recovery): taking it again would be a write for nothing."""
        until = execution.lease_expires_at
        return (
            execution.lease_owner == self._owner
            and until is not None
            and until - datetime.now(UTC) > self._ttl / 2
        )

    async def cancel(self, execution: Execution) -> Execution:
        run = self._runs.get(execution.id)
        if run is None or run.task is None:
            return await self._runner.record_canceled(execution)
        run.control.cancel_requested = True
        self._interrupt(run)
        await asyncio.wait([run.task])
        return await self._store.get(execution.account_id, execution.id)

    async def wait(self, execution_id: str, within: float | None = None) -> Execution | None:
        run = self._runs.get(execution_id)
        if run is None or run.task is None:
            return None
        task = run.task
        await asyncio.wait([task], timeout=within)
        if not task.done() or task.cancelled() or task.exception() is not None:
            return None  # (a crash was logged by ``_run``; the store says where the run is)
        return task.result()

    async def shutdown(self, grace: float) -> None:
        self._closing = True
        runs = list(self._runs.values())
        for run in runs:
            run.control.suspend_requested = True
            if not run.started:
                self._interrupt(run)
        tasks = [r.task for r in runs if r.task is not None]
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=grace)
            for task in late:
                task.cancel()  # past the grace period: the last checkpoint is the resume point
            if late:
                await asyncio.wait(late)
        if self._renewer is not None:
            self._stopping.set()
            await asyncio.wait([self._renewer])
            self._renewer = None

    # --- internals -------------------------------------------------------------------------

    def _interrupt(self, run: _Run) -> None:
        """Cancel the run's task where it is. A task that has not taken its first step would
        end without running any handler: it reads ``run.control`` as it enters instead."""
        if run.entered and run.task is not None:
            run.task.cancel()

    async def _run(self, run: _Run) -> Execution:
        run.entered = True
        execution, control = run.execution, run.control
        finished: Execution | None = None
        slot = Slot(self._slots, execution.account_id)
        RUN_SLOT.set(slot)  # this task's own context: the run's nodes find it there
        try:
            if not (control.cancel_requested or control.suspend_requested):
                await slot.take()
                run.started = True
            if control.cancel_requested or not run.started:
                raise asyncio.CancelledError
            finished = await self._runner.run(execution, control)
            return finished
        except asyncio.CancelledError:
            slot.give_back()
            if not control.cancel_requested:
                raise
            # Canceled before the engine started (waiting for a slot, loading the flow).
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
            finished = await self._runner.record_canceled(execution)
            return finished
        except Exception:
            log.exception("execution crashed in the runner", execution_id=execution.id)
            raise
        finally:
            slot.give_back()
            self._runs.pop(execution.id, None)
            await self._hand_back(execution, finished)

    async def _hand_back(self, execution: Execution, finished: Execution | None) -> None:
        """Expire an unfinished run's lease so recovery takes it at once (a released lease on
        an active run would never be claimed). A finished run's went with its final status,
        a waiting one's with its move to ``waiting``."""
        if finished is not None and (is_terminal(finished.status) or finished.status == "waiting"):
            return
        try:
            await self._store.renew_lease(
                execution.account_id, execution.id, owner=self._owner, ttl=EXPIRED
            )
        except (Conflict, NotFound):
            pass  # the lease was taken over after expiry; the new owner keeps it
        except StorageError:
            log.warning("could not hand back a lease", execution_id=execution.id, exc_info=True)

    async def _renew_forever(self) -> None:
        interval = max(self._ttl.total_seconds() / 3, 0.05)
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(interval):
                    await self._stopping.wait()
            if self._stopping.is_set():
                return
            await self._renew(list(self._runs.values()))

    async def _renew(self, runs: Iterable[_Run]) -> None:
        for run in runs:
            execution = run.execution
            if execution.id not in self._runs:
                continue
            try:
                await self._store.renew_lease(
                    execution.account_id, execution.id, owner=self._owner, ttl=self._ttl
                )
            except Conflict:
                if await self._has_ended(execution):
                    continue  # its final status let the lease go; the task is just finishing
                # Someone claimed it after our lease expired (we stalled): they run it now,
                # so stop ours without recording anything.
                log.warning("lease lost, stopping local run", execution_id=execution.id)
                if run.task is not None:
                    run.task.cancel()
            except StorageError:
                log.warning("lease renewal failed", execution_id=execution.id, exc_info=True)

    async def _has_ended(self, execution: Execution) -> bool:
        try:
            current = await self._store.get(execution.account_id, execution.id)
        except NotFound:
            return False
        return is_terminal(current.status)
