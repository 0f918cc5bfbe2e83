"""Crash recovery: runs whose lease expired (their executor died) are claimed and resumed.

At start-up and then periodically, ``Recovery`` claims active executions of any account whose
lease has expired, or that were never leased and are older than the lease TTL (their creator
died before handing them over), and submits them to the executor, which resumes each from its
last checkpoint. The node that was running when the old owner died runs again: delivery is
at-least-once per node. Each claim counts a resume attempt in the store; the runner fails a
run claimed too often without progress (see ``Runner``'s poison-run guard) instead of
re-running it forever. With Celery workers, the claim re-enqueues the run instead
(``celery_executor``), and a worker takes it over. The sweep itself (batches, the background
loop) is ``ClaimSweeper``'s.
"""

from __future__ import annotations

from datetime import timedelta

import structlog

from flowrunner.executions.executor import Executor
from flowrunner.executions.sweeper import ClaimSweeper
from flowrunner.storage import ExecutionStore
from flowrunner.storage.records import Execution

log = structlog.get_logger("flowrunner.executions")


class Recovery(ClaimSweeper):
    _failed_event = "recovery sweep failed"

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
        super().__init__(store, executor, lease_ttl=lease_ttl, period=interval, batch=batch)
        # Runs never leased are claimed once this old (default: the lease TTL). The Celery
        # executor leaves runs waiting in the broker unleased, so it says how long they may.
        self._unleased_after = unleased_after

    async def claim_once(self) -> int:
        """Claim and resubmit every expired run now; how many were taken over."""
        return await self._sweep()

    async def _claim(self) -> list[Execution]:
        return await self._store.admin_claim_expired_leases(
            owner=self._executor.owner,
            ttl=self._ttl,
            limit=self._batch,
            unleased_after=self._unleased_after,
        )

    def _log_claimed(self, execution: Execution) -> None:
        log.info(
            "recovering execution",
            execution_id=execution.id,
            account_id=execution.account_id,
            status=execution.status,
        )
