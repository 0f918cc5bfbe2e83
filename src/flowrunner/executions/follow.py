"""Following runs: a run's stored events, then its live ones, with no gap and no duplicate.

The bus is subscribed to before the store is read, so nothing published in between is
missed; live events already replayed are dropped; a gap in live sequence numbers (the bus
dropped some) or a quiet spell sends the follower back to the store, which is the truth.
While the bus has lost its transport (Redis down or hung) the follower polls the store every
``POLL_SECONDS``; when the subscription is live again it reads the store once more and goes
back to live events, the sequence numbers keeping out duplicates.

Waiting for a run's end (``until_end``, the API's ``?wait``) uses the store's own signal when
it has one (``EndNotices``: PostgreSQL's LISTEN/NOTIFY on the hot path), so a run ended by any
process wakes its waiters at once, whatever the bus; otherwise the bus, with a re-read of the
store every second.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator, Mapping
from datetime import datetime
from typing import Any

from flowrunner.errors import NotFound
from flowrunner.executions import events as ev
from flowrunner.executions.bus import EventBus, Subscription, Topic
from flowrunner.executions.states import is_terminal
from flowrunner.storage import EndNotices, Execution, ExecutionEvent, Store
from flowrunner.storage.protocols import MAX_LIMIT

QUIET_SECONDS = 5.0
POLL_SECONDS = 1.0  # while the bus is not live
MAX_REPLAY_RUNS = 1000  # runs a flow subscription's cursor replays at most
# With the store's end notices, the store is re-read this often only in case one was missed
# (a run ended by a process not sending them).
NOTICED_RECHECK_SECONDS = QUIET_SECONDS


class Follower:
    def __init__(self, store: Store, bus: EventBus) -> None:
        self._store = store
        self._runs = store.executions
        self._bus = bus

    async def until_end(self, account_id: str, execution_id: str, deadline: float) -> Execution:
        """The run once it ended, or as it is at ``deadline`` (``time.monotonic``)."""
        if isinstance(self._runs, EndNotices):
            return await self._until_noticed(self._runs, account_id, execution_id, deadline)
        subscription = await self._bus.subscribe(Topic(account_id, execution_id=execution_id))
        try:
            execution = await self._runs.get(account_id, execution_id)
            while not is_terminal(execution.status):
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                # The bus says when to look; the store says what is true (an event published
                # before we subscribed, or lost by the bus, is caught by the periodic re-read).
                event = await subscription.next(within=min(left, 1.0))
                if event is None or ev.is_final(event):
                    execution = await self._runs.get(account_id, execution_id)
            return execution
        finally:
            await subscription.close()

    async def _until_noticed(
        self, notices: EndNotices, account_id: str, execution_id: str, deadline: float
    ) -> Execution:
        async with notices.watch_end(execution_id) as ended:
            execution = await self._runs.get(account_id, execution_id)
            while not is_terminal(execution.status):
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(min(left, NOTICED_RECHECK_SECONDS)):
                        await ended.wait()
                ended.clear()
                execution = await self._runs.get(account_id, execution_id)
            return execution

    async def execution(
        self, account_id: str, execution_id: str, *, after_seq: int = 0
    ) -> AsyncGenerator[ExecutionEvent, None]:
        """Every event with ``seq > after_seq``, then live ones, until the run's final event.

        Subscribes to the bus before reading the store, so nothing published in between is
        missed; live events already replayed are dropped, and a gap (the bus lagged) is
        filled from the store.
        """
        await self._runs.get(account_id, execution_id)  # NotFound for another account's run
        subscription = await self._bus.subscribe(Topic(account_id, execution_id=execution_id))
        return self._follow(subscription, account_id, execution_id, after_seq)

    async def _follow(
        self, subscription: Subscription, account_id: str, execution_id: str, last: int
    ) -> AsyncGenerator[ExecutionEvent, None]:
        try:
            async for event in self._stored(account_id, execution_id, last):
                last = event.seq
                yield event
                if ev.is_final(event):
                    return
            while True:
                quiet = QUIET_SECONDS if subscription.live else POLL_SECONDS
                live = await subscription.next(within=quiet)
                if live is not None and live.type == ev.STREAM:
                    yield live  # live-only: not in the store, not in the sequence
                    continue
                if live is not None and live.seq <= last:
                    continue  # already replayed from the store
                if live is not None and live.seq == last + 1:
                    last = live.seq
                    yield live
                    if ev.is_final(live):
                        return
                    continue
                # A gap (the bus dropped events), a quiet spell, or the bus lost or regained
                # its transport (``next`` says None): the store is the truth.
                ended = live is None and is_terminal(
                    (await self._runs.get(account_id, execution_id)).status
                )
                async for event in self._stored(account_id, execution_id, last):
                    last = event.seq
                    yield event
                    if ev.is_final(event):
                        return
                if ended:
                    return  # finished, but its final event was lost in a crash
        finally:
            await subscription.close()

    async def _stored(
        self, account_id: str, execution_id: str, after_seq: int
    ) -> AsyncGenerator[ExecutionEvent, None]:
        while True:
            batch = await self._runs.list_events(account_id, execution_id, after_seq=after_seq)
            for event in batch:
                yield event
            if len(batch) < MAX_LIMIT:
                return
            after_seq = batch[-1].seq

    async def flow(
        self,
        account_id: str,
        flow_id: str,
        *,
        since: datetime | None = None,
        after: Mapping[str, int] | None = None,
    ) -> AsyncGenerator[ExecutionEvent, None]:
        """Live events of every run of one flow; with a cursor, first what was missed.

        The cursor of a client that reconnects: ``since``, when it stopped listening, and
        ``after``, the last ``seq`` it has of each run it saw. Replayed from the store, run by
        run (oldest first): those runs after their ``seq``, runs created since ``since``, and
        runs still queued (no event yet); then live events, none twice."""
        await self._store.flows.get(account_id, flow_id, include_deleted=True)
        subscription = await self._bus.subscribe(Topic(account_id, flow_id=flow_id))
        if since is None and not after:
            return _live(subscription)
        return self._flow_replay(subscription, account_id, flow_id, since, dict(after or {}))

    async def _flow_replay(
        self,
        subscription: Subscription,
        account_id: str,
        flow_id: str,
        since: datetime | None,
        last: dict[str, int],
    ) -> AsyncGenerator[ExecutionEvent, None]:
        try:
            for execution_id in await self._missed_runs(account_id, flow_id, since, last):
                async for event in self._stored(
                    account_id, execution_id, last.get(execution_id, 0)
                ):
                    last[execution_id] = event.seq
                    yield event
            async for event in subscription:
                if event.type != ev.STREAM and event.seq <= last.get(event.execution_id, 0):
                    continue  # replayed already
                yield event
        finally:
            await subscription.close()

    async def _missed_runs(
        self, account_id: str, flow_id: str, since: datetime | None, known: Mapping[str, int]
    ) -> list[str]:
        """The runs to replay (at most ``MAX_REPLAY_RUNS``), oldest first."""
        found: dict[str, Execution] = {}
        for execution_id in list(known)[:MAX_REPLAY_RUNS]:
            try:
                run = await self._runs.get(account_id, execution_id)
            except NotFound:
                continue  # another account's, or gone: nothing to replay
            if run.flow_id == flow_id:
                found[run.id] = run
        queries: list[dict[str, Any]] = [{"status": ("queued",)}]
        if since is not None:
            queries.append({"created_after": since})
        for query in queries:
            cursor: str | None = None
            while len(found) < MAX_REPLAY_RUNS:
                page = await self._runs.list(
                    account_id, flow_id=flow_id, limit=MAX_LIMIT, cursor=cursor, **query
                )
                for run in page.items:
                    found.setdefault(run.id, run)
                cursor = page.next_cursor
                if cursor is None:
                    break
        ordered = sorted(found.values(), key=lambda run: (run.created_at, run.id))
        return [run.id for run in ordered[:MAX_REPLAY_RUNS]]


async def _live(subscription: Subscription) -> AsyncGenerator[ExecutionEvent, None]:
    try:
        async for event in subscription:
            yield event
    finally:
        await subscription.close()
