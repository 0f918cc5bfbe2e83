"""Account node types as a service: create, update, delete, versions (audited), and the
node-type registry of one account — the server's types plus the account's own.

Every flow check and every run start asks ``registry_for(account)``: the account's current
types (one read of a single page, remembered for ``fresh_for`` seconds so that a burst of
runs does not read them each time), and a registry built once per distinct set of
(name, version) and kept in a small LRU; an account without types of its own gets the
server's registry itself. A save or delete through this process forgets what it remembered
of that account at once; another server process sees the change within ``fresh_for``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any, Protocol

from cachetools import LRUCache, TTLCache

from flowrunner.audit.actions import NODE_TYPE_CREATED, NODE_TYPE_DELETED, NODE_TYPE_UPDATED
from flowrunner.custom_types.node import AccountNodeType
from flowrunner.custom_types.spec import CustomTypeSpec, parse_spec
from flowrunner.custom_types.store import CustomType, CustomTypeStore
from flowrunner.errors import Conflict, InvalidInput
from flowrunner.plugins.registry import NodeTypeRegistry
from flowrunner.storage import Page, Store
from flowrunner.storage.protocols import DEFAULT_LIMIT

MAX_TYPES_PER_ACCOUNT = 100
MAX_VERSIONS = 1000
MAX_MESSAGE = 1000


class AuditSink(Protocol):
    async def record(
        self,
        action: str,
        *,
        account_id: str | None,
        actor_id: str | None,
        target: str | None,
        outcome: str = "ok",
        details: Any = None,
    ) -> object: ...


class CustomTypes:
    def __init__(
        self,
        store: Store,
        audit: AuditSink,
        base: Callable[[], NodeTypeRegistry],
        *,
        max_script_bytes: int = 65_536,
        cache_size: int = 1024,
        fresh_for: float = 2.0,
    ) -> None:
        self._types = CustomTypeStore(store)
        self._audit = audit
        self._base = base
        self.max_script_bytes = max_script_bytes
        # account -> (base cache key, types stamp, registry)
        self._registries: LRUCache[str, tuple[tuple[int, str], str, NodeTypeRegistry]] = LRUCache(
            cache_size
        )
        # account -> its current types, for ``fresh_for`` seconds
        self._current: TTLCache[str, list[CustomType]] = TTLCache(cache_size, ttl=fresh_for)

    # --- reading ---------------------------------------------------------------------------

    def parse(self, data: Any) -> CustomTypeSpec:
        return parse_spec(data, max_script_bytes=self.max_script_bytes)

    async def list(self, account_id: str) -> list[CustomType]:
        return await self._types.all_current(account_id, limit=MAX_TYPES_PER_ACCOUNT)

    async def get(self, account_id: str, name: str) -> CustomType:
        return await self._types.current(account_id, name)

    async def version(self, account_id: str, name: str, number: int) -> CustomType:
        await self._types.current(account_id, name)  # a deleted type's history is hidden
        return await self._types.version(account_id, name, number)

    async def versions(
        self, account_id: str, name: str, *, limit: int = DEFAULT_LIMIT, cursor: str | None = None
    ) -> Page[CustomType]:
        """Newest first."""
        await self._types.current(account_id, name)
        return await self._types.versions(account_id, name, limit=limit, cursor=cursor)

    async def registry_for(self, account_id: str) -> NodeTypeRegistry:
        """The registry flows of ``account_id`` are checked and compiled against."""
        base = self._base()
        mine = self._current.get(account_id)
        if mine is None:
            mine = self._current[account_id] = await self.list(account_id)
        if not mine:
            return base
        stamp = hashlib.sha256(
            "\n".join(f"{t.name}@{t.version}" for t in mine).encode()
        ).hexdigest()[:16]
        cached = self._registries.get(account_id)
        if cached is not None and cached[0] == base.cache_key and cached[1] == stamp:
            return cached[2]
        extra = [(node_type, node_type.source) for node_type in map(AccountNodeType, mine)]
        registry, _ = base.overlay(extra, scope=f"account:{account_id}:{stamp}")
        self._registries[account_id] = (base.cache_key, stamp, registry)
        return registry

    # --- changing --------------------------------------------------------------------------

    async def create(
        self,
        account_id: str,
        spec: CustomTypeSpec,
        *,
        actor_id: str | None = None,
        message: str | None = None,
    ) -> CustomType:
        """Version 1 of a new type (or the next, for a name deleted before); Conflict if the
        account has a live type of that name."""
        message = _message(message)
        self._check_free(spec.name)
        mine = await self.list(account_id)
        if any(t.name == spec.name for t in mine):
            raise Conflict(f"node type '{spec.name}' exists: update it instead", name=spec.name)
        if len(mine) >= MAX_TYPES_PER_ACCOUNT:
            raise InvalidInput(
                f"an account holds at most {MAX_TYPES_PER_ACCOUNT} node types",
                limit=MAX_TYPES_PER_ACCOUNT,
            )
        saved = await self._types.create(account_id, spec, author=actor_id, message=message)
        self._current.pop(account_id, None)
        await self._record(NODE_TYPE_CREATED, account_id, actor_id, saved)
        return saved

    async def update(
        self,
        account_id: str,
        name: str,
        spec: CustomTypeSpec,
        *,
        expected_version: int | None = None,
        actor_id: str | None = None,
        message: str | None = None,
    ) -> CustomType:
        """Store ``spec`` as the next version of ``name``; with ``expected_version``, Conflict
        unless it is still the current one."""
        message = _message(message)
        if spec.name != name:
            raise InvalidInput(
                f"the definition names '{spec.name}', not '{name}': a type is not renamed "
                "(create the new name, delete the old one)"
            )
        self._check_free(name)
        saved = await self._types.update(
            account_id,
            spec,
            expected_version=expected_version,
            max_versions=MAX_VERSIONS,
            author=actor_id,
            message=message,
        )
        self._current.pop(account_id, None)
        await self._record(NODE_TYPE_UPDATED, account_id, actor_id, saved)
        return saved

    async def delete(self, account_id: str, name: str, *, actor_id: str | None = None) -> None:
        """Flows can no longer use it (saved ones fail validation and runs fail at start);
        its versions are kept."""
        current = await self._types.delete(account_id, name)
        self._current.pop(account_id, None)
        await self._record(NODE_TYPE_DELETED, account_id, actor_id, current)

    # --- internals -------------------------------------------------------------------------

    def _check_free(self, name: str) -> None:
        """A name the server's types (built-ins, plugins) hold now is refused, naming them."""
        base = self._base()
        if name in base:
            raise InvalidInput(
                f"node type '{name}' clashes with {base.source(name).describe()} of that "
                "name; choose another name"
            )

    async def _record(
        self, action: str, account_id: str, actor_id: str | None, saved: CustomType
    ) -> None:
        await self._audit.record(
            action,
            account_id=account_id,
            actor_id=actor_id or account_id,
            target=f"node_type:{saved.name}",
            details={"version": saved.version},
        )


def _message(message: str | None) -> str | None:
    text = (message or "").strip()
    if len(text) > MAX_MESSAGE:
        raise InvalidInput(f"a version message holds at most {MAX_MESSAGE} characters")
    return text or None
