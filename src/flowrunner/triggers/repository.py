"""Trigger records over the key-value store, so every backend holds them with no new table.

Every record lives in the system partition (the pseudo-account ``_system``), never in the
account's own key-value store: flows read and write their account's store with the ``store``
node, and must not be able to edit a trigger (its verification, its account). Three copies:
by account (``account-triggers:<account id>``, for listings), by id (``triggers``: the public
hook route knows only the id), and for a schedule in ``schedules`` (the scheduler scans it
every second and must not page through every webhook). Per-schedule progress (the last
occurrence fired) lives beside them in ``schedule-state``.

Exactly-once firing does not rest on these writes (two processes may both write the same
state): it rests on the run's idempotency key, a conditional insert every backend has.
"""

from __future__ import annotations

import builtins
import secrets
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

from flowrunner.errors import InvalidInput, NotFound
from flowrunner.storage import Page, Store
from flowrunner.storage.protocols import DEFAULT_LIMIT, MAX_LIMIT
from flowrunner.storage.records import SYSTEM_ACCOUNT, JSONValue
from flowrunner.triggers.records import Kind, Source, Trigger

SYSTEM = SYSTEM_ACCOUNT
NS_TRIGGERS = "triggers"
NS_ACCOUNT = "account-triggers:"
NS_SCHEDULES = "schedules"
"""The system partition's schedules only: what the scheduler scans every tick."""
NS_STATE = "schedule-state"
MAX_TRIGGERS_PER_ACCOUNT = 500


def new_trigger_id() -> str:
    # The id is the public URL's secret-free part; unguessable so URLs cannot be enumerated.
    return "trg_" + secrets.token_urlsafe(18)


class TriggerRepository:
    def __init__(self, store: Store, clock: Callable[[], datetime] | None = None) -> None:
        self._kv = store.kv
        self._clock = clock or (lambda: datetime.now(UTC))

    def _now(self) -> datetime:
        return self._clock()

    async def create(
        self,
        account_id: str,
        *,
        flow_id: str,
        name: str,
        kind: Kind,
        source: Source,
        config: dict[str, Any],
        enabled: bool = True,
        trigger_id: str | None = None,
    ) -> Trigger:
        if trigger_id is None:
            count = await self._count(account_id)
            if count >= MAX_TRIGGERS_PER_ACCOUNT:
                raise InvalidInput(
                    f"an account holds at most {MAX_TRIGGERS_PER_ACCOUNT} triggers",
                    limit=MAX_TRIGGERS_PER_ACCOUNT,
                )
        now = self._now()
        trigger = Trigger(
            id=trigger_id or new_trigger_id(),
            account_id=account_id,
            flow_id=flow_id,
            name=name,
            kind=kind,
            source=source,
            enabled=enabled,
            config=config,
            created_at=now,
            updated_at=now,
        )
        await self._write(trigger)
        return trigger

    async def save(self, trigger: Trigger) -> Trigger:
        await self._write(trigger)
        return trigger

    async def _write(self, trigger: Trigger) -> None:
        value: JSONValue = trigger.to_json()
        await self._kv.put(SYSTEM, NS_ACCOUNT + trigger.account_id, trigger.id, value)
        await self._kv.put(SYSTEM, NS_TRIGGERS, trigger.id, value)
        if trigger.kind == "schedule":
            await self._kv.put(SYSTEM, NS_SCHEDULES, trigger.id, value)

    async def get(self, account_id: str, trigger_id: str) -> Trigger:
        entry = await self._kv.get(SYSTEM, NS_ACCOUNT + account_id, trigger_id)
        return Trigger.from_json(entry.value)

    async def find(self, trigger_id: str) -> Trigger:
        """Any account's trigger by id (the public hook route); ``NotFound`` if none."""
        entry = await self._kv.get(SYSTEM, NS_TRIGGERS, trigger_id)
        return Trigger.from_json(entry.value)

    async def list(
        self,
        account_id: str,
        *,
        flow_id: str | None = None,
        kind: Kind | None = None,
        limit: int = DEFAULT_LIMIT,
        cursor: str | None = None,
    ) -> Page[Trigger]:
        where: dict[str, JSONValue] = {}
        if flow_id is not None:
            where["flow_id"] = flow_id
        if kind is not None:
            where["kind"] = kind
        page = await self._kv.list(
            SYSTEM, NS_ACCOUNT + account_id, where=where or None, limit=limit, cursor=cursor
        )
        items = [Trigger.from_json(e.value) for e in page.items]
        return Page(items, page.next_cursor)

    async def all_for_flow(self, account_id: str, flow_id: str) -> builtins.list[Trigger]:
        found: builtins.list[Trigger] = []
        cursor: str | None = None
        while True:
            page = await self.list(account_id, flow_id=flow_id, limit=MAX_LIMIT, cursor=cursor)
            found.extend(page.items)
            if page.next_cursor is None:
                return found
            cursor = page.next_cursor

    async def delete(self, account_id: str, trigger_id: str) -> None:
        if not await self._kv.delete(SYSTEM, NS_ACCOUNT + account_id, trigger_id):
            raise NotFound("trigger not found", trigger_id=trigger_id)
        await self._kv.delete(SYSTEM, NS_TRIGGERS, trigger_id)
        await self._kv.delete(SYSTEM, NS_SCHEDULES, trigger_id)
        await self._kv.delete(SYSTEM, NS_STATE, trigger_id)

    async def schedules(self) -> AsyncIterator[Trigger]:
        """Every enabled schedule of every account, in pages."""
        cursor: str | None = None
        while True:
            page = await self._kv.list(
                SYSTEM,
                NS_SCHEDULES,
                where={"enabled": True},
                limit=MAX_LIMIT,
                cursor=cursor,
            )
            for entry in page.items:
                yield Trigger.from_json(entry.value)
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    async def last_fired(self, trigger_id: str) -> datetime | None:
        try:
            entry = await self._kv.get(SYSTEM, NS_STATE, trigger_id)
        except NotFound:
            return None
        value = entry.value
        if isinstance(value, dict) and isinstance(value.get("last"), str):
            return datetime.fromisoformat(value["last"])
        return None

    async def set_last_fired(self, trigger_id: str, occurrence: datetime) -> None:
        await self._kv.put(SYSTEM, NS_STATE, trigger_id, {"last": occurrence.isoformat()})

    async def _count(self, account_id: str) -> int:
        total, cursor = 0, None
        while True:
            page = await self._kv.list(
                SYSTEM, NS_ACCOUNT + account_id, limit=MAX_LIMIT, cursor=cursor
            )
            total += len(page.items)
            if page.next_cursor is None:
                return total
            cursor = page.next_cursor
