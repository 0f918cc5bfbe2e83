"""What crash recovery and the waker share: claim runs in batches, hand them to the executor.

A ``ClaimSweeper`` claims executions from the store (each claim leases them to this
process's executor in one write, so when several processes sweep, exactly one takes a run),
submits each to the executor, and repeats while a batch comes back full; ``start`` sweeps
now and then every ``period`` seconds in the background. ``Recovery`` claims runs whose lease
expired, ``Waker`` runs whose durable wait is due: each says only what it claims and how it
logs a claimed run.
"""

from __future__ import annotations

import asyncio
import contextlib
from abc import ABC, abstractmethod
from datetime import timedelta

import structlog

from flowrunner.errors import ExecutionError, StorageError
from flowrunner.executions.executor import Executor
from flowrunner.storage import ExecutionStore
from flowrunner.storage.records import Execution

log = structlog.get_logger("flowrunner.executions")


class ClaimSweeper(ABC):
    _failed_event = "sweep failed"
    """The warning logged when a sweep fails (the store is out of reach)."""

    def __init__(
        self,
        store: ExecutionStore,
        executor: Executor,
        *,
        lease_ttl: timedelta,
        period: float,
        batch: int,
    ) -> None:
        self._store = store
        self._executor = executor
        self._ttl = lease_ttl
        self._period = period
        self._batch = batch
        self._task: asyncio.Task[None] | None = None
        # Stops the loop between sweeps (cancelling a sweep mid-query would abandon a
        # database connection).
        self._stopping = asyncio.Event()

    @abstractmethod
    async def _claim(self) -> list[Execution]:
        """Claim up to ``self._batch`` runs for ``self._executor.owner``."""

    @abstractmethod
    def _log_claimed(self, execution: Execution) -> None: ...

    async def _sweep(self) -> int:
        """Claim and submit until a batch comes back short; how many the executor took."""
        submitted = 0
        while True:
            claimed = await self._claim()
            for execution in claimed:
                self._log_claimed(execution)
                if await self._executor.submit(execution):
                    submitted += 1
            if len(claimed) < self._batch:
                return submitted

    def start(self) -> None:
        """Sweep now and every ``period`` seconds, in the background."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._stopping.set()
            await asyncio.wait([self._task])
            self._task = None

    async def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                await self._sweep()
            except StorageError:
                log.warning(self._failed_event, exc_info=True)
            except ExecutionError:
                return  # the executor is shutting down
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._period):
                    await self._stopping.wait()
