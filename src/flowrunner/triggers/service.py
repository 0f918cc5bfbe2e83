"""``TriggerService``: an account's triggers over the API, and the flow's declared ones.

When a flow version is saved, the triggers its YAML declares (``triggers:`` and ``cron``
nodes) replace the flow's previous declared ones, matched by kind and name: a trigger that
stays keeps its id (its public URL) and its enabled switch; a changed one is rewritten; one
no longer declared is deleted. Triggers made over the API (``source: api``) are left alone.
Deleting a flow deletes all of its triggers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from flowrunner.audit import AuditLog
from flowrunner.definition import FlowDefinition
from flowrunner.definition.triggers import TriggerSpec
from flowrunner.errors import NotFound
from flowrunner.storage import Page, Store
from flowrunner.storage.protocols import DEFAULT_LIMIT
from flowrunner.triggers.records import Kind, Trigger, config_of
from flowrunner.triggers.repository import TriggerRepository

TRIGGER_CREATED = "trigger.created"
TRIGGER_UPDATED = "trigger.updated"
TRIGGER_DELETED = "trigger.deleted"


class TriggerService:
    def __init__(
        self,
        store: Store,
        audit: AuditLog,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._store = store
        self._audit = audit
        self._clock = clock
        self.repository = TriggerRepository(store, clock)
        self._changed: list[Callable[[str], None]] = []

    def on_change(self, callback: Callable[[str], None]) -> None:
        """``callback(trigger_id)`` after a change (the hook route's cache forgets it)."""
        self._changed.append(callback)

    # --- the API ----------------------------------------------------------------------------

    async def create(
        self, account_id: str, flow_id: str, spec: TriggerSpec, *, actor_id: str | None
    ) -> Trigger:
        await self._store.flows.get(account_id, flow_id)  # NotFound: no trigger for it
        trigger = await self.repository.create(
            account_id,
            flow_id=flow_id,
            name=spec.name,
            kind=spec.kind,
            source="api",
            config=config_of(spec),
            enabled=spec.enabled,
        )
        await self._record(TRIGGER_CREATED, trigger, actor_id)
        return trigger

    async def get(self, account_id: str, trigger_id: str) -> Trigger:
        return await self.repository.get(account_id, trigger_id)

    async def list(
        self,
        account_id: str,
        *,
        flow_id: str | None = None,
        kind: Kind | None = None,
        limit: int = DEFAULT_LIMIT,
        cursor: str | None = None,
    ) -> Page[Trigger]:
        return await self.repository.list(
            account_id, flow_id=flow_id, kind=kind, limit=limit, cursor=cursor
        )

    async def set_enabled(
        self, account_id: str, trigger_id: str, enabled: bool, *, actor_id: str | None
    ) -> Trigger:
        trigger = await self.repository.get(account_id, trigger_id)
        if trigger.enabled == enabled:
            return trigger
        # updated_at moves: a schedule enabled again does not catch up its disabled time.
        changed = replace(trigger, enabled=enabled, updated_at=self._clock())
        await self.repository.save(changed)
        await self._record(TRIGGER_UPDATED, changed, actor_id, enabled=enabled)
        return changed

    async def delete(self, account_id: str, trigger_id: str, *, actor_id: str | None) -> None:
        trigger = await self.repository.get(account_id, trigger_id)
        await self.repository.delete(account_id, trigger_id)
        await self._record(TRIGGER_DELETED, trigger, actor_id)

    # --- the flow's declared triggers (a FlowRegistry listener) -----------------------------

    async def flow_saved(self, account_id: str, flow_id: str, definition: FlowDefinition) -> None:
        existing = {
            (t.kind, t.name): t
            for t in await self.repository.all_for_flow(account_id, flow_id)
            if t.source == "flow"
        }
        for spec in definition.triggers:
            config = config_of(spec)
            known = existing.pop((spec.kind, spec.name), None)
            if known is None:
                trigger = await self.repository.create(
                    account_id,
                    flow_id=flow_id,
                    name=spec.name,
                    kind=spec.kind,
                    source="flow",
                    config=config,
                    enabled=spec.enabled,
                )
                await self._record(TRIGGER_CREATED, trigger, None)
            elif dict(known.config) != config:
                changed = replace(known, config=config, updated_at=self._clock())
                await self.repository.save(changed)
                await self._record(TRIGGER_UPDATED, changed, None)
        for gone in existing.values():
            await self.repository.delete(account_id, gone.id)
            await self._record(TRIGGER_DELETED, gone, None)

    async def flow_deleted(self, account_id: str, flow_id: str) -> None:
        for trigger in await self.repository.all_for_flow(account_id, flow_id):
            try:
                await self.repository.delete(account_id, trigger.id)
            except NotFound:
                continue  # deleted meanwhile
            await self._record(TRIGGER_DELETED, trigger, None)

    async def _record(
        self, action: str, trigger: Trigger, actor_id: str | None, **details: Any
    ) -> None:
        for callback in self._changed:
            callback(trigger.id)
        await self._audit.record(
            action,
            account_id=trigger.account_id,
            actor_id=actor_id,
            target=trigger.id,
            details={"flow_id": trigger.flow_id, "kind": trigger.kind, "name": trigger.name,
                     "source": trigger.source, **details},
        )  # fmt: skip
