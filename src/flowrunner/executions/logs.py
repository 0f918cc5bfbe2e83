"""Reading a run's log lines: its stored events filtered by node, level, time and type, a
page at a time in ``seq`` order."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from flowrunner.executions import events as ev
from flowrunner.storage import ExecutionEvent, ExecutionStore
from flowrunner.storage.protocols import MAX_LIMIT


@dataclass(frozen=True, slots=True)
class LogFilter:
    """Which events a log page keeps (None / empty: any)."""

    node_id: str | None = None
    level: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    types: Collection[str] = (ev.LOG,)

    def keeps(self, event: ExecutionEvent) -> bool:
        data = event.data
        return (
            (not self.types or event.type in self.types)
            and (self.node_id is None or data.get("node_id") == self.node_id)
            and (self.level is None or data.get("level") == self.level)
            and (self.since is None or event.created_at >= self.since)
            and (self.until is None or event.created_at < self.until)
        )


async def read_logs(
    runs: ExecutionStore,
    account_id: str,
    execution_id: str,
    wanted: LogFilter,
    *,
    after_seq: int,
    limit: int,
) -> tuple[list[ExecutionEvent], int | None]:
    """Events ``wanted`` keeps in ``seq`` order (at most ``limit``, bounded by ``MAX_LIMIT``),
    and the ``after_seq`` of the next page (None on the last)."""
    limit = max(1, min(limit, MAX_LIMIT))
    found: list[ExecutionEvent] = []
    cursor = after_seq
    while True:
        batch = await runs.list_events(account_id, execution_id, after_seq=cursor)
        for event in batch:
            cursor = event.seq
            if wanted.keeps(event):
                found.append(event)
                if len(found) == limit:
                    more = await runs.list_events(
                        account_id, execution_id, after_seq=cursor, limit=1
                    )
                    return found, (cursor if more else None)
        if len(batch) < MAX_LIMIT:
            return found, None
