"""Execution and flow events into the outbox, in the same write as the change that causes them.

The runner asks ``EventOutbox.entries`` for the outbox entries of a transition and hands them
to ``ExecutionStore.update(outbox=...)``: the status and its webhook events commit together,
so a process dying between the two loses neither. The flow registry does the same with
``flow_entries`` and the flow store's writes. After the commit, ``committed`` wakes this
process's dispatcher so the delivery leaves at once instead of at the next poll.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from flowrunner.storage import Execution, Flow, NewDelivery, NewEvent
from flowrunner.storage.records import JSONValue, utcnow
from flowrunner.webhooks.events import (
    BY_STATUS,
    NODE_STATES,
    execution_event,
    flow_event,
    node_event,
)
from flowrunner.webhooks.subscriptions import Subscriptions


class EventOutbox:
    def __init__(self, subscriptions: Subscriptions, *, wake: Callable[[], None]) -> None:
        self._subscriptions = subscriptions
        self._wake = wake

    async def entries(
        self,
        execution: Execution,
        status: str,
        now: datetime,
        *,
        flow_name: str | None = None,
        flow_webhooks: Sequence[Mapping[str, Any]] = (),
        output: JSONValue = None,
        error: JSONValue = None,
    ) -> list[NewDelivery]:
        event_type = BY_STATUS.get(status)
        if event_type is None or not execution.detached:
            return []  # a sub-flow's child run is part of its parent's run, not an event
        ids = await self._subscriptions.endpoint_ids(
            execution.account_id, execution.flow_id, event_type, flow_webhooks
        )
        if not ids:
            return []
        payload = execution_event(
            event_type, execution, now, flow_name=flow_name, output=output, error=error
        )
        return [NewDelivery(endpoint_id, event_type, payload) for endpoint_id in ids]

    async def node_entries(
        self,
        execution: Execution,
        events: Sequence[NewEvent],
        *,
        flow_name: str | None = None,
        flow_webhooks: Sequence[Mapping[str, Any]] = (),
    ) -> list[NewDelivery]:
        """``node.completed`` / ``node.failed`` entries for the top-level node events of a
        step the recorder is about to write (none when nobody subscribed to them)."""
        if not execution.detached:
            return []
        entries: list[NewDelivery] = []
        wanted: dict[str, list[str]] = {}  # per event type, once per step
        for event in events:
            data = event.data
            event_type = NODE_STATES.get(str(data.get("state"))) if event.type == "node" else None
            if event_type is None or data.get("flow_path"):
                continue
            ids = wanted.get(event_type)
            if ids is None:
                ids = wanted[event_type] = await self._subscriptions.endpoint_ids(
                    execution.account_id, execution.flow_id, event_type, flow_webhooks
                )
            if ids:
                when = event.time or utcnow()
                payload = node_event(event_type, execution, data, when, flow_name=flow_name)
                entries += [NewDelivery(endpoint_id, event_type, payload) for endpoint_id in ids]
        return entries

    async def flow_entries(
        self,
        event_type: str,
        flow: Flow,
        version: int,
        *,
        actor_id: str | None = None,
        flow_webhooks: Sequence[Mapping[str, Any]] = (),
    ) -> list[NewDelivery]:
        """``flow.created`` / ``flow.updated`` / ``flow.deleted`` entries for the flow store's
        write of that change (none when nobody subscribed)."""
        ids = await self._subscriptions.endpoint_ids(
            flow.account_id, flow.id, event_type, flow_webhooks
        )
        if not ids:
            return []
        payload = flow_event(event_type, flow, version, utcnow(), actor_id=actor_id)
        return [NewDelivery(endpoint_id, event_type, payload) for endpoint_id in ids]

    def committed(self) -> None:
        self._wake()
