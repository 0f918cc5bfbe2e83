"""The flow registry: an account's flows, their immutable versions, search and history.

Every call is scoped by ``account_id``; another account's flow behaves exactly like a missing
one (``NotFound``), so ids never leak across tenants. YAML is validated before anything is
stored, and each save appends a version instead of overwriting one: executions pin a version
number and must always find the text they ran.
"""

from __future__ import annotations

import builtins
import difflib
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from functools import partial
from typing import Any, Protocol

from flowrunner.definition import FlowDefinition
from flowrunner.errors import Conflict, InvalidInput, Problem
from flowrunner.flows.checking import FlowChecker
from flowrunner.flows.references import check_references
from flowrunner.plugins import NodeTypeRegistry
from flowrunner.storage import Flow, FlowVersion, NewDelivery, Page, Store
from flowrunner.storage.protocols import DEFAULT_LIMIT

MAX_VERSION_MESSAGE = 1000
"""Characters of a version's message (``flows push --message``): a note, not a document."""


class AuditSink(Protocol):
    """Where security-relevant changes are recorded (``flowrunner.audit.AuditLog`` fits)."""

    async def record(
        self,
        action: str,
        *,
        account_id: str | None,
        actor_id: str | None,
        target: str | None,
        outcome: str = "ok",
        details: Mapping[str, Any] | None = None,
    ) -> object: ...


class SaveListener(Protocol):
    """Told after a flow version is saved or a flow deleted (the triggers service keeps the
    flow's declared triggers in step)."""

    async def flow_saved(
        self, account_id: str, flow_id: str, definition: FlowDefinition
    ) -> None: ...

    async def flow_deleted(self, account_id: str, flow_id: str) -> None: ...


class FlowEvents(Protocol):
    """The webhook events of flow changes (``webhooks.EventOutbox`` fits): entries the flow
    store writes with the change itself, and a nudge to send them once it committed."""

    async def flow_entries(
        self,
        event_type: str,
        flow: Flow,
        version: int,
        *,
        actor_id: str | None = None,
        flow_webhooks: Sequence[Mapping[str, Any]] = (),
    ) -> list[NewDelivery]: ...

    def committed(self) -> None: ...


# A save without ``expected_version`` still always lands: its event names the version it
# made, so it is written against the version just read and, if another save got in between,
# read and tried again — this many times before the Conflict reaches the caller.
SAVE_ATTEMPTS = 10


@dataclass(frozen=True, slots=True)
class FlowFilters:
    """List filters; every one given must match. Text matches are case-insensitive."""

    name_contains: str | None = None
    description_contains: str | None = None
    tags: Collection[str] = ()
    created_after: datetime | None = None
    created_before: datetime | None = None
    updated_after: datetime | None = None
    updated_before: datetime | None = None

    def keeps(self, flow: Flow) -> bool:
        """The filters the store cannot apply itself (it indexes name, tags and creation)."""
        needle = (self.description_contains or "").lower()
        return (
            needle in flow.description.lower()
            and (self.updated_after is None or flow.updated_at >= self.updated_after)
            and (self.updated_before is None or flow.updated_at < self.updated_before)
        )


@dataclass(frozen=True, slots=True)
class SavedFlow:
    """A flow with the version a save produced (or the current one, on reads)."""

    flow: Flow
    version: FlowVersion


class FlowRegistry:
    def __init__(
        self,
        store: Store,
        audit: AuditSink,
        checker: FlowChecker | None = None,
        listeners: Sequence[SaveListener] = (),
        types: Callable[[str], Awaitable[NodeTypeRegistry]] | None = None,
    ) -> None:
        self._store = store
        # An account's node types (the server's plus its own JavaScript ones); without it,
        # every account is checked against the checker's registry.
        self._types = types
        self._audit = audit
        self._listeners = list(listeners)
        self._events: FlowEvents | None = None
        # Parses and validates off the event loop, within the per-flow limits.
        self._checker = checker or FlowChecker()

    def close(self) -> None:
        """Stop the validation threads (checks in progress finish)."""
        self._checker.close()

    # --- validation ------------------------------------------------------------------------

    async def validate(self, yaml: str, account_id: str | None = None) -> list[Problem]:
        """Every error and warning in ``yaml`` (against ``account_id``'s node types); nothing
        is stored. FlowTooLarge for a text over the size limit."""
        registry = await self.registry_for(account_id) if account_id else None
        return await self._checker.validate(yaml, registry=registry)

    async def registry_for(self, account_id: str) -> NodeTypeRegistry:
        """The node types ``account_id``'s flows may use now."""
        if self._types is None:
            return self._checker.registry()
        return await self._types(account_id)

    async def _load(self, yaml: str, registry: NodeTypeRegistry | None = None) -> FlowDefinition:
        # DefinitionError carries every problem with line:column; the API turns it into a 400
        # (FlowTooLarge, a DefinitionError, into a 413).
        return await self._checker.load(yaml, registry=registry)

    # --- create / read ---------------------------------------------------------------------

    async def create(
        self,
        account_id: str,
        yaml: str,
        *,
        name: str | None = None,
        description: str | None = None,
        tags: Sequence[str] = (),
        actor_id: str | None = None,
        message: str | None = None,
    ) -> SavedFlow:
        """A new flow at version 1. Name and description default to the YAML's metadata;
        ``message`` is stored with the version."""
        message = _message(message)
        registry = await self.registry_for(account_id)
        definition = await self._load(yaml, registry)
        await check_references(
            self._store.flows,
            account_id,
            definition,
            flow_id=None,
            name=name or definition.metadata.name,
            load=partial(self._load, registry=registry),
            registry=registry,
        )
        flow = await self._store.flows.create(
            account_id,
            name=name or definition.metadata.name,
            description=description if description is not None else _description(definition),
            tags=tags,
        )
        entries = await self._entries("flow.created", flow, 1, actor_id, definition)
        version = await self._store.flows.add_version(
            account_id,
            flow.id,
            yaml=yaml,
            author=actor_id,
            expected_current=0,
            message=message,
            outbox=entries,
        )
        self._committed(entries)
        flow = await self._store.flows.get(account_id, flow.id)
        await self._record("flow.created", account_id, actor_id, flow.id, version=1)
        for listener in self._listeners:
            await listener.flow_saved(account_id, flow.id, definition)
        return SavedFlow(flow, version)

    def listen(self, listener: SaveListener) -> None:
        """Add a listener (the composition root wires services built after the registry)."""
        self._listeners.append(listener)

    def publish(self, events: FlowEvents) -> None:
        """Write ``flow.created`` / ``flow.updated`` / ``flow.deleted`` webhook events with
        each change (the webhook runtime is built after the registry)."""
        self._events = events

    async def get(self, account_id: str, flow_id: str) -> SavedFlow:
        flow = await self._store.flows.get(account_id, flow_id)
        version = await self._store.flows.get_version(account_id, flow_id, flow.current_version)
        return SavedFlow(flow, version)

    async def list(
        self,
        account_id: str,
        *,
        filters: FlowFilters | None = None,
        limit: int = DEFAULT_LIMIT,
        cursor: str | None = None,
    ) -> Page[Flow]:
        """Newest first. Filters the store cannot index are applied to each fetched page, so a
        page may hold fewer than ``limit`` flows; follow ``next_cursor`` until it is None."""
        f = filters or FlowFilters()
        page = await self._store.flows.list(
            account_id,
            limit=limit,
            cursor=cursor,
            name_contains=f.name_contains,
            tags=f.tags,
            created_after=f.created_after,
            created_before=f.created_before,
        )
        return Page([flow for flow in page.items if f.keeps(flow)], page.next_cursor)

    # --- change ----------------------------------------------------------------------------

    async def update(
        self,
        account_id: str,
        flow_id: str,
        yaml: str,
        *,
        expected_version: int | None = None,
        name: str | None = None,
        description: str | None = None,
        actor_id: str | None = None,
        message: str | None = None,
    ) -> SavedFlow:
        """Validate, then append a new version. With ``expected_version``, ``Conflict`` unless
        the flow is still at that version (no lost updates between two editors)."""
        message = _message(message)
        registry = await self.registry_for(account_id)
        definition = await self._load(yaml, registry)
        return await self._append(
            account_id,
            flow_id,
            yaml,
            definition,
            expected_version=expected_version,
            name=name,
            description=description,
            action="flow.updated",
            actor_id=actor_id,
            message=message,
            registry=registry,
        )

    async def patch(
        self,
        account_id: str,
        flow_id: str,
        *,
        name: str | None = None,
        description: str | None = None,
        tags: Sequence[str] | None = None,
        actor_id: str | None = None,
    ) -> Flow:
        """Change metadata only (None = leave as is); the YAML and versions are untouched."""
        entries: builtins.list[NewDelivery] = []
        if self._events is not None:
            before = await self._store.flows.get(account_id, flow_id)
            after = replace(
                before,
                name=before.name if name is None else name,
                tags=before.tags if tags is None else tuple(tags),
            )
            entries = await self._entries("flow.updated", after, after.current_version, actor_id)
        flow = await self._store.flows.update(
            account_id, flow_id, name=name, description=description, tags=tags, outbox=entries
        )
        self._committed(entries)
        changed = [
            k
            for k, v in (("name", name), ("description", description), ("tags", tags))
            if v is not None
        ]
        await self._record("flow.updated", account_id, actor_id, flow_id, metadata=changed)
        return flow

    async def delete(self, account_id: str, flow_id: str, *, actor_id: str | None = None) -> None:
        """Soft delete: no new runs, no listing; versions stay for past executions."""
        entries: builtins.list[NewDelivery] = []
        if self._events is not None:
            flow = await self._store.flows.get(account_id, flow_id)
            entries = await self._entries("flow.deleted", flow, flow.current_version, actor_id)
        await self._store.flows.delete(account_id, flow_id, outbox=entries)
        self._committed(entries)
        await self._record("flow.deleted", account_id, actor_id, flow_id)
        for listener in self._listeners:
            await listener.flow_deleted(account_id, flow_id)

    # --- versions --------------------------------------------------------------------------

    async def versions(
        self,
        account_id: str,
        flow_id: str,
        *,
        limit: int = DEFAULT_LIMIT,
        cursor: str | None = None,
    ) -> Page[FlowVersion]:
        """Newest version first."""
        await self._store.flows.get(account_id, flow_id)  # a deleted flow's history is hidden
        return await self._store.flows.list_versions(
            account_id, flow_id, limit=limit, cursor=cursor
        )

    async def version(self, account_id: str, flow_id: str, number: int) -> FlowVersion:
        await self._store.flows.get(account_id, flow_id)
        return await self._store.flows.get_version(account_id, flow_id, number)

    async def diff(self, account_id: str, flow_id: str, old: int, new: int) -> str:
        """A unified diff of version ``old`` → ``new`` (empty when the texts are equal)."""
        before = await self.version(account_id, flow_id, old)
        after = await self.version(account_id, flow_id, new)
        lines = difflib.unified_diff(
            before.yaml.splitlines(keepends=True),
            after.yaml.splitlines(keepends=True),
            fromfile=f"v{old}",
            tofile=f"v{new}",
        )
        # A last line without a newline would glue onto the next diff line; end every line.
        return "".join(line if line.endswith("\n") else line + "\n" for line in lines)

    async def restore(
        self,
        account_id: str,
        flow_id: str,
        number: int,
        *,
        expected_version: int | None = None,
        actor_id: str | None = None,
        message: str | None = None,
    ) -> SavedFlow:
        """Make old version ``number`` current again, as a new version (history only grows);
        its message says so unless ``message`` is given."""
        message = _message(message) or f"restored version {number}"
        old = await self.version(account_id, flow_id, number)
        # Re-validate: node types may have been removed since that version was saved.
        registry = await self.registry_for(account_id)
        definition = await self._load(old.yaml, registry)
        return await self._append(
            account_id,
            flow_id,
            old.yaml,
            definition,
            expected_version=expected_version,
            action="flow.restored",
            actor_id=actor_id,
            message=message,
            registry=registry,
            restored_from=number,
        )

    # --- internals -------------------------------------------------------------------------

    async def _append(
        self,
        account_id: str,
        flow_id: str,
        yaml: str,
        definition: FlowDefinition,
        *,
        expected_version: int | None,
        action: str,
        actor_id: str | None,
        name: str | None = None,
        description: str | None = None,
        message: str | None = None,
        registry: NodeTypeRegistry | None = None,
        **details: Any,
    ) -> SavedFlow:
        before = await self._store.flows.get(account_id, flow_id)  # NotFound before any write
        registry = registry or await self.registry_for(account_id)
        await check_references(
            self._store.flows,
            account_id,
            definition,
            flow_id=flow_id,
            name=name or definition.metadata.name,
            load=partial(self._load, registry=registry),
            registry=registry,
        )
        new_name = name or definition.metadata.name
        new_description = description if description is not None else _description(definition)
        version = await self._add_version(
            before, yaml, definition, expected_version, actor_id, new_name, message
        )
        if (new_name, new_description) != (before.name, before.description):
            flow = await self._store.flows.update(
                account_id, flow_id, name=new_name, description=new_description
            )
        else:
            # Most saves change the nodes only: a read is cheaper than a second write.
            flow = await self._store.flows.get(account_id, flow_id)
        await self._record(action, account_id, actor_id, flow_id, version=version.number, **details)
        for listener in self._listeners:
            await listener.flow_saved(account_id, flow_id, definition)
        return SavedFlow(flow, version)

    async def _add_version(
        self,
        before: Flow,
        yaml: str,
        definition: FlowDefinition,
        expected_version: int | None,
        actor_id: str | None,
        new_name: str,
        message: str | None,
    ) -> FlowVersion:
        """Append the version with its ``flow.updated`` entries (which name its number)."""
        flows, account_id = self._store.flows, before.account_id
        if self._events is None:
            return await flows.add_version(
                account_id, before.id, yaml=yaml, author=actor_id,
                expected_current=expected_version, message=message,
            )  # fmt: skip
        for _ in range(SAVE_ATTEMPTS):
            expected = before.current_version if expected_version is None else expected_version
            flow = replace(before, name=new_name)
            entries = await self._entries("flow.updated", flow, expected + 1, actor_id, definition)
            try:
                version = await flows.add_version(
                    account_id, before.id, yaml=yaml, author=actor_id,
                    expected_current=expected, message=message, outbox=entries,
                )  # fmt: skip
            except Conflict:
                if expected_version is not None:
                    raise
                before = await flows.get(account_id, before.id)
                continue
            self._committed(entries)
            return version
        raise Conflict("flow is being changed by too many writers; retry", flow_id=before.id)

    async def _entries(
        self,
        event_type: str,
        flow: Flow,
        version: int,
        actor_id: str | None,
        definition: FlowDefinition | None = None,
    ) -> builtins.list[NewDelivery]:
        if self._events is None:
            return []
        webhooks = definition.metadata.webhooks if definition is not None else ()
        return await self._events.flow_entries(
            event_type, flow, version, actor_id=actor_id, flow_webhooks=webhooks
        )

    def _committed(self, entries: Sequence[NewDelivery]) -> None:
        if entries and self._events is not None:
            self._events.committed()

    async def _record(
        self, action: str, account_id: str, actor_id: str | None, flow_id: str, **details: Any
    ) -> None:
        await self._audit.record(
            action,
            account_id=account_id,
            actor_id=actor_id or account_id,
            target=f"flow:{flow_id}",
            details=details or None,
        )


def _message(message: str | None) -> str | None:
    """A version message as stored: stripped, None when blank; InvalidInput when too long."""
    text = (message or "").strip()
    if len(text) > MAX_VERSION_MESSAGE:
        raise InvalidInput(
            f"a version message holds at most {MAX_VERSION_MESSAGE} characters",
            limit=MAX_VERSION_MESSAGE,
        )
    return text or None


def _description(definition: FlowDefinition) -> str:
    return definition.metadata.description or ""
