"""Flows and their immutable versions.

The rules every backend follows are in ``flowrunner.storage.protocols``.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Protocol

from flowrunner.storage.protocols.limits import DEFAULT_LIMIT
from flowrunner.storage.records import (
    Flow,
    FlowVersion,
    NewDelivery,
    Page,
)


class FlowStore(Protocol):
    async def create(
        self,
        account_id: str,
        *,
        name: str,
        description: str = "",
        tags: Sequence[str] = (),
    ) -> Flow:
        """A new flow with ``current_version == 0``; add its YAML with ``add_version``."""
        ...

    async def get(
        self, account_id: str, flow_id: str, *, include_deleted: bool = False
    ) -> Flow: ...

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
        """Flows matching every filter; ``tags`` keeps flows carrying all of the given tags,
        ``name_contains`` is case-insensitive."""
        ...

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
        """Change the metadata; ``outbox`` entries (the ``flow.updated`` webhook events) are
        added to the webhook outbox in the same write, entries whose endpoint is gone dropped."""
        ...

    async def delete(
        self, account_id: str, flow_id: str, *, outbox: Sequence[NewDelivery] = ()
    ) -> None:
        """Soft delete (sets ``deleted_at``); versions are kept for past executions.
        ``outbox`` (``flow.deleted``) is written with it, or not at all."""
        ...

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
        """Append version ``current_version + 1`` and bump the flow in one atomic step.

        ``message`` (the author's note on the change) is stored with the version as given.

        With ``expected_current``, ``Conflict`` unless the flow is still at that version
        (optimistic concurrency for editors that loaded an older version). ``outbox``
        (``flow.created`` / ``flow.updated``) is written in the same step: a refused version
        writes no entry, and no version is written without its entries.
        """
        ...

    async def get_version(self, account_id: str, flow_id: str, number: int) -> FlowVersion:
        """A version of a flow, deleted or not (executions pin versions)."""
        ...

    async def list_versions(
        self,
        account_id: str,
        flow_id: str,
        *,
        limit: int = DEFAULT_LIMIT,
        cursor: str | None = None,
    ) -> Page[FlowVersion]:
        """Newest version first."""
        ...
