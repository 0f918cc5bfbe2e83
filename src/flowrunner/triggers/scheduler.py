"""The scheduler: a task in each server process that starts the runs of due schedules.

Every process scans the enabled schedules each ``tick`` and starts the due occurrences with
the idempotency key ``schedule:<trigger>:<occurrence>``. That key is a conditional insert on
every backend, so however many processes fire the same occurrence, exactly one run exists;
the others get that run back. The run input is the schedule's ``input`` plus ``trigger``:
``{id, name, kind: "schedule", occurrence}`` (which schedule and occurrence started it).

After downtime, the missed occurrences since the last one fired are handled by ``catch_up``:
``none`` fires only an occurrence still within the grace window, ``latest`` (default) fires
the newest one missed, ``all`` fires each missed one, at most ``max_catch_up`` (the newest).
A new schedule starts counting from when it was saved: nothing before that is "missed".
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from flowrunner.errors import FlowrunnerError
from flowrunner.executions.service import ExecutionService
from flowrunner.triggers.occurrences import due_between, next_after
from flowrunner.triggers.records import Trigger
from flowrunner.triggers.repository import TriggerRepository

log = logging.getLogger("flowrunner.triggers")
DEFAULT_MAX_CATCH_UP = 100


@dataclass(frozen=True, slots=True)
class Fired:
    trigger_id: str
    occurrence: datetime
    execution_id: str
    created: bool


class Scheduler:
    def __init__(
        self,
        triggers: TriggerRepository,
        runs: ExecutionService,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        tick: float = 1.0,
        max_catch_up: int = DEFAULT_MAX_CATCH_UP,
        grace: timedelta | None = None,
    ) -> None:
        self._triggers = triggers
        self._runs = runs
        self._clock = clock
        self._tick = tick
        self._max_catch_up = max_catch_up
        self._grace = grace or timedelta(seconds=max(5.0, 2 * tick))
        # Trigger id -> (record version, next due time): skip the store until it is due.
        self._next: dict[str, tuple[datetime, datetime]] = {}
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="flowrunner-scheduler")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        while True:
            try:
                await self.tick()
            except FlowrunnerError:
                log.exception("scheduler tick failed; retrying next tick")
            await asyncio.sleep(self._tick)

    async def tick(self) -> list[Fired]:
        """Start every due occurrence now; returns what was fired (or found fired)."""
        now = self._clock()
        fired: list[Fired] = []
        seen: set[str] = set()
        async for trigger in self._triggers.schedules():
            seen.add(trigger.id)
            known = self._next.get(trigger.id)
            if known is not None and known[0] == trigger.updated_at and now < known[1]:
                continue
            try:
                fired += await self._fire_due(trigger, now)
            except FlowrunnerError:
                # One broken schedule (its flow deleted meanwhile) must not stop the others.
                log.exception("schedule %s could not fire", trigger.id)
        for gone in set(self._next) - seen:
            del self._next[gone]
        return fired

    async def _fire_due(self, trigger: Trigger, now: datetime) -> list[Fired]:
        spec = trigger.schedule
        last = await self._triggers.last_fired(trigger.id)
        after = max(last, trigger.updated_at) if last is not None else trigger.updated_at
        due, _count = due_between(spec, after, now, keep=self._max_catch_up)
        if spec.catch_up == "all":
            chosen = due
        elif spec.catch_up == "latest":
            chosen = due[-1:]
        else:
            chosen = [d for d in due[-1:] if now - d <= self._grace]
        fired = [await self._fire(trigger, when) for when in chosen]
        if due:
            await self._triggers.set_last_fired(trigger.id, due[-1])
        self._next[trigger.id] = (trigger.updated_at, next_after(spec, due[-1] if due else after))
        return fired

    async def _fire(self, trigger: Trigger, occurrence: datetime) -> Fired:
        stamp = occurrence.astimezone(UTC).isoformat()
        payload = {
            **trigger.schedule.input,
            "trigger": {
                "id": trigger.id,
                "name": trigger.name,
                "kind": "schedule",
                "occurrence": stamp,
            },
        }
        started = await self._runs.start(
            trigger.account_id,
            trigger.flow_id,
            payload,
            idempotency_key=f"schedule:{trigger.id}:{stamp}",
        )
        return Fired(trigger.id, occurrence, started.execution.id, started.created)
