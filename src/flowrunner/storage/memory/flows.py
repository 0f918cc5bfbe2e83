"""Flows and their immutable versions in memory."""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Sequence
from dataclasses import replace
from datetime import datetime

from flowrunner.errors import Conflict, NotFound
from flowrunner.storage.memory.state import MemoryState, page_by_time
from flowrunner.storage.memory.webhooks import add_outbox
from flowrunner.storage.pagination import clamp_limit, decode_cursor, encode_cursor
from flowrunner.storage.protocols import DEFAULT_LIMIT
from flowrunner.storage.records import Flow, FlowVersion, NewDelivery, Page, new_id


class MemoryFlows:
    def __init__(self, state: MemoryState) -> None:
        self._s = state

    async def create(
        self,
        account_id: str,
        *,
        name: str,
        description: str = "",
        tags: Sequence[str] = (),
    ) -> Flow:
        async with self._s.lock:
            now = self._s.clock()
            flow = Flow(new_id(), account_id, name, description, _unique(tags), 0, now, now)
            self._s.flows[flow.id] = flow
            return flow

    async def get(self, account_id: str, flow_id: str, *, include_deleted: bool = False) -> Flow:
        flow = self._s.flows.get(flow_id)
        if (
            flow is None
            or flow.account_id != account_id
            or (flow.deleted_at is not None and not include_deleted)
        ):
            raise NotFound("flow not found", account_id=account_id, flow_id=flow_id)
        return flow

    async def list(
        self,
        account_id: str,
        *,
        limit: int = DEFAULT_LIMIT,
        cursor: str | None = None,
        name_contains: str | None = None,
        tags: Collection[str] = (),
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        include_deleted: bool = False,
    ) -> Page[Flow]:
        needle = (name_contains or "").lower()
        rows = [
            f
            for f in self._s.flows.values()
            if f.account_id == account_id
            and (include_deleted or f.deleted_at is None)
            and needle in f.name.lower()
            and set(tags) <= set(f.tags)
            and (created_after is None or f.created_at >= created_after)
            and (created_before is None or f.created_at < created_before)
        ]
        return page_by_time(rows, limit=limit, cursor=cursor, key=lambda f: (f.created_at, f.id))

    async def update(
        self,
        account_id: str,
        flow_id: str,
        *,
        name: str | None = None,
        description: str | None = None,
        tags: Sequence[str] | None = None,
        outbox: Sequence[NewDelivery] = (),
    ) -> Flow:
        async with self._s.lock:
            flow = await self.get(account_id, flow_id)
            flow = replace(
                flow,
                name=flow.name if name is None else name,
                description=flow.description if description is None else description,
                tags=flow.tags if tags is None else _unique(tags),
                updated_at=self._s.clock(),
            )
            self._s.flows[flow_id] = flow
            add_outbox(self._s, account_id, outbox)
            return flow

    async def delete(
        self, account_id: str, flow_id: str, *, outbox: Sequence[NewDelivery] = ()
    ) -> None:
        async with self._s.lock:
            flow = await self.get(account_id, flow_id)
            now = self._s.clock()
            self._s.flows[flow_id] = replace(flow, deleted_at=now, updated_at=now)
            add_outbox(self._s, account_id, outbox)

    async def add_version(
        self,
        account_id: str,
        flow_id: str,
        *,
        yaml: str,
        author: str | None = None,
        expected_current: int | None = None,
        message: str | None = None,
        outbox: Sequence[NewDelivery] = (),
    ) -> FlowVersion:
        async with self._s.lock:
            flow = await self.get(account_id, flow_id)
            if expected_current is not None and flow.current_version != expected_current:
                raise Conflict(
                    f"flow is at version {flow.current_version}, not {expected_current}",
                    flow_id=flow_id,
                    current_version=flow.current_version,
                )
            now = self._s.clock()
            number = flow.current_version + 1
            checksum = hashlib.sha256(yaml.encode()).hexdigest()
            version = FlowVersion(flow_id, account_id, number, yaml, checksum, author, now, message)
            self._s.versions[(flow_id, number)] = version
            self._s.flows[flow_id] = replace(flow, current_version=number, updated_at=now)
            add_outbox(self._s, account_id, outbox)
            return version

    async def get_version(self, account_id: str, flow_id: str, number: int) -> FlowVersion:
        version = self._s.versions.get((flow_id, number))
        if version is None or version.account_id != account_id:
            raise NotFound(
                "flow version not found", account_id=account_id, flow_id=flow_id, number=number
            )
        return version

    async def list_versions(
        self,
        account_id: str,
        flow_id: str,
        *,
        limit: int = DEFAULT_LIMIT,
        cursor: str | None = None,
    ) -> Page[FlowVersion]:
        await self.get(account_id, flow_id, include_deleted=True)
        rows = sorted(
            (v for (fid, _), v in self._s.versions.items() if fid == flow_id),
            key=lambda v: v.number,
            reverse=True,
        )
        if cursor is not None:
            (before,) = decode_cursor(cursor, 1)
            rows = [v for v in rows if v.number < int(before)]
        limit = clamp_limit(limit)
        items = rows[:limit]
        more = len(rows) > limit
        return Page(items, encode_cursor(items[-1].number) if more else None)


def _unique(tags: Sequence[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(tags))
