"""The waker: runs whose durable wait is due are claimed and resumed.

Every ``tick`` seconds it claims ``waiting`` executions of any account whose ``wake_at`` has
come (``admin_claim_due_waits``: each becomes ``running`` and leased to this process in one
write, so when several server processes or workers sweep, exactly one takes a run) and
submits them to the executor, which resumes each from its checkpoint at the waiting node.
A process that dies between the claim and the run leaves an expiring lease: crash recovery
takes the run over, as any other. Admission to run is the executor's: fair between accounts.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

import structlog

from flowrunner.errors import ExecutionError, StorageError
from flowrunner.executions.executor import Executor
from flowrunner.storage import ExecutionStore

log = structlog.get_logger("flowrunner.executions")


class Waker:
    def __init__(
        self,
        store: ExecutionStore,
        executor: Executor,
        *,
        lease_ttl: timedelta = timedelta(seconds=30),
        tick: float = 1.0,
        batch: int = 100,
    ) -> None:
        self._store = store
        self._executor = executor
        self._ttl = lease_ttl
        self._tick = tick
        self._batch = batch
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()  # between sweeps, never mid-query

    async def wake_once(self) -> int:
        """Claim and submit every due run now; how many were woken."""
        woken = 0
        while True:
            claimed = await self._store.admin_claim_due_waits(
                owner=self._executor.owner, ttl=self._ttl, limit=self._batch
            )
            for execution in claimed:
                log.info(
                    "waking execution", execution_id=execution.id, account_id=execution.account_id
                )
                if await self._executor.submit(execution):
                    woken += 1
            if len(claimed) < self._batch:
                return woken

    def start(self) -> None:
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
                await self.wake_once()
            except StorageError:
                log.warning("waker sweep failed", exc_info=True)
            except ExecutionError:
                return  # the executor is shutting down
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self._tick)
