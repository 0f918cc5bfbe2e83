"""Crash recovery: runs whose lease expired (their executor died) are claimed and resumed.

At start-up and then periodically, ``Recovery`` claims active executions of any account whose
lease has expired, or that were never leased and are older than the lease TTL (their creator
died before handing them over), and submits them to the executor, which resumes each from its
last checkpoint. The node that was running when the old owner died runs again: delivery is
at-least-once per node. Each claim counts a resume attempt in the store; the runner fails a
run claimed too often without progress (see ``Runner``'s poison-run guard) instead of
re-running it forever. With Celery workers, the claim re-enqueues the run instead
(``celery_executor``), and a worker takes it over.
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


class Recovery:
    def __init__(
        self,
        store: ExecutionStore,
        executor: Executor,
        *,
        lease_ttl: timedelta = timedelta(seconds=30),
        interval: float = 10.0,
        batch: int = 100,
        unleased_after: timedelta | None = None,
    ) -> None:
        self._store = store
        self._executor = executor
        self._ttl = lease_ttl
        self._interval = interval
        self._batch = batch
        # Runs never leased are claimed once this old (default: the lease TTL). The Celery
        # executor leaves runs waiting in the broker unleased, so it says how long they may.
        self._unleased_after = unleased_after
        self._task: asyncio.Task[None] | None = None
        # Stops the loop between sweeps (cancelling a sweep mid-query would abandon a
        # database connection).
        self._stopping = asyncio.Event()

    async def claim_once(self) -> int:
        """Claim and resubmit every expired run now; how many were taken over."""
        taken = 0
        while True:
            claimed = await self._store.admin_claim_expired_leases(
                owner=self._executor.owner,
                ttl=self._ttl,
                limit=self._batch,
                unleased_after=self._unleased_after,
            )
            for execution in claimed:
                log.info(
                    "recovering execution",
                    execution_id=execution.id,
                    account_id=execution.account_id,
                    status=execution.status,
                )
                if await self._executor.submit(execution):
                    taken += 1
            if len(claimed) < self._batch:
                return taken

    def start(self) -> None:
        """Claim now and every ``interval`` seconds, in the background."""
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
                await self.claim_once()
            except StorageError:
                log.warning("recovery sweep failed", exc_info=True)
            except ExecutionError:
                return  # the executor is shutting down
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self._interval)
