"""The waker: runs whose durable wait is due are claimed and resumed.

Every ``tick`` seconds it claims ``waiting`` executions of any account whose ``wake_at`` has
come (``admin_claim_due_waits``: each becomes ``running`` and leased to this process in one
write, so when several server processes or workers sweep, exactly one takes a run) and
submits them to the executor, which resumes each from its checkpoint at the waiting node.
A process that dies between the claim and the run leaves an expiring lease: crash recovery
takes the run over, as any other. Admission to run is the executor's: fair between accounts.
The sweep itself (batches, the background loop) is ``ClaimSweeper``'s.
"""

from __future__ import annotations

from datetime import timedelta

import structlog

from flowrunner.executions.executor import Executor
from flowrunner.executions.sweeper import ClaimSweeper
from flowrunner.storage import ExecutionStore
from flowrunner.storage.records import Execution

log = structlog.get_logger("flowrunner.executions")


class Waker(ClaimSweeper):
    _failed_event = "waker sweep failed"

    def __init__(
        self,
        store: ExecutionStore,
        executor: Executor,
        *,
        lease_ttl: timedelta = timedelta(seconds=30),
        tick: float = 1.0,
        batch: int = 100,
    ) -> None:
        super().__init__(store, executor, lease_ttl=lease_ttl, period=tick, batch=batch)

    async def wake_once(self) -> int:
        """Claim and submit every due run now; how many were woken."""
        return await self._sweep()

    async def _claim(self) -> list[Execution]:
        return await self._store.admin_claim_due_waits(
            owner=self._executor.owner, ttl=self._ttl, limit=self._batch
        )

    def _log_claimed(self, execution: Execution) -> None:
        log.info("waking execution", execution_id=execution.id, account_id=execution.account_id)
