"""The pruner: deletes what retention policies let go, in small batches, in the background.

Each batch is one ``ExecutionStore.delete`` of at most ``batch`` runs (a short write: no long
lock on SQLite or PostgreSQL), and the delete itself checks that every run is still finished,
so a run resumed since it was chosen stays. Several server processes may prune at once: a
run deleted twice is deleted once. Audit records are never pruned here.
"""

from __future__ import annotations

import asyncio
import builtins
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from flowrunner.retention.policy import PolicyStore, Rule
from flowrunner.storage import Execution, Store
from flowrunner.storage.records import ExecutionStatus, utcnow

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Pruned:
    """What one pass did (or, in a dry run, would do) to one account's runs of one kind."""

    account_id: str
    statuses: tuple[ExecutionStatus, ...]
    count: int


class Pruner:
    def __init__(
        self,
        store: Store,
        policies: PolicyStore,
        *,
        batch: int = 100,
        interval: float = 600.0,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._store = store
        self._policies = policies
        self._batch = batch
        self._interval = interval
        self._clock = clock
        self._task: asyncio.Task[None] | None = None

    async def prune(self, *, dry_run: bool = False, account_id: str | None = None) -> list[Pruned]:
        """One pass over every account (or one): what went, per account and kind of run."""
        done = []
        async for account in self._accounts(account_id):
            policy = await self._policies.effective(account)
            for rule, statuses in policy.rules():
                if rule.keeps_everything:
                    continue
                count = await self._apply(account, rule, statuses, dry_run)
                if count:
                    done.append(Pruned(account, statuses, count))
        return done

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._forever())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _forever(self) -> None:
        while True:
            try:
                for pruned in await self.prune():
                    log.info(
                        "retention: deleted %d %s run(s) of account %s",
                        pruned.count, "/".join(pruned.statuses), pruned.account_id,
                    )  # fmt: skip
            except Exception:  # the store is down, say: try again next time
                log.exception("retention pass failed")
            await asyncio.sleep(self._interval)

    async def _accounts(self, only: str | None) -> AsyncIterator[str]:
        if only is not None:
            yield only
            return
        cursor = None
        while True:
            page = await self._store.accounts.admin_list(limit=100, cursor=cursor)
            for account in page.items:
                yield account.id
            cursor = page.next_cursor
            if cursor is None:
                return

    async def _apply(
        self, account: str, rule: Rule, statuses: tuple[ExecutionStatus, ...], dry_run: bool
    ) -> int:
        cutoff = None if rule.days is None else self._clock() - timedelta(days=rule.days)
        count = 0
        if cutoff is not None:
            count += await self._too_old(account, statuses, cutoff, dry_run)
        if rule.keep_last is not None:
            count += await self._beyond_last(account, statuses, rule.keep_last, cutoff, dry_run)
        return count

    async def _too_old(
        self,
        account: str,
        statuses: tuple[ExecutionStatus, ...],
        cutoff: datetime,
        dry_run: bool,
    ) -> int:
        # A run ends after it is created: every run that ended before the cutoff is among
        # those created before it (the listing the stores can filter on).
        count, cursor = 0, None
        while True:
            page = await self._store.executions.list(
                account, status=statuses, created_before=cutoff, limit=self._batch, cursor=cursor
            )
            count += await self._delete(
                account, [e.id for e in page.items if _ended_before(e, cutoff)], statuses, dry_run
            )
            cursor = page.next_cursor
            if cursor is None:
                return count

    async def _beyond_last(
        self,
        account: str,
        statuses: tuple[ExecutionStatus, ...],
        keep: int,
        cutoff: datetime | None,
        dry_run: bool,
    ) -> int:
        count, flows = 0, None
        while True:
            page = await self._store.flows.list(
                account, include_deleted=True, limit=100, cursor=flows
            )
            for flow in page.items:
                count += await self._flow_beyond_last(
                    account, flow.id, statuses, keep, cutoff, dry_run
                )
            flows = page.next_cursor
            if flows is None:
                return count

    async def _flow_beyond_last(
        self,
        account: str,
        flow_id: str,
        statuses: tuple[ExecutionStatus, ...],
        keep: int,
        cutoff: datetime | None,
        dry_run: bool,
    ) -> int:
        count, seen, cursor = 0, 0, None
        while True:
            page = await self._store.executions.list(
                account, flow_id=flow_id, status=statuses, limit=self._batch, cursor=cursor
            )
            doomed = []
            for execution in page.items:
                seen += 1
                # In a dry run the age rule deleted nothing: do not count its runs twice.
                counted = dry_run and cutoff is not None and _ended_before(execution, cutoff)
                if seen > keep and not counted:
                    doomed.append(execution.id)
            count += await self._delete(account, doomed, statuses, dry_run)
            cursor = page.next_cursor
            if cursor is None:
                return count

    async def _delete(
        self,
        account: str,
        ids: builtins.list[str],
        statuses: tuple[ExecutionStatus, ...],
        dry_run: bool,
    ) -> int:
        if not ids:
            return 0
        if dry_run:
            return len(ids)
        deleted = await self._store.executions.delete(account, ids, statuses=statuses)
        await asyncio.sleep(0)  # between batches, the loop's other work goes first
        return len(deleted)


def _ended_before(execution: Execution, cutoff: datetime) -> bool:
    ended = execution.finished_at or execution.created_at
    return ended < cutoff
