"""An account's node types and their versions, over the key-value store's system partition.

Every backend already holds the key-value store (with its conformance suite), so the types
need no new table; they live in the system partition (the pseudo-account ``_system``, as
triggers), which no run's ``store`` node can reach: a flow cannot edit a node type. Per
account, three namespaces:

- ``node-type-versions:<account>``: every version, immutable, under ``<name>#<countdown>``
  (``10**10 - 1 - number``, zero-padded: keys sort ascending, so a prefix listing is the
  newest version first, pages and cursors included);
- ``node-types:<account>``: the current version of each live type, under its name (what a
  listing and every flow check of the account read: one page);
- ``node-type-seq:<account>``: the last version number of each name. It is taken with the
  store's atomic ``increment``, so two concurrent saves get two numbers and neither version is
  lost; the current record is then set to the highest number stored (a save that finds a
  higher number than its own puts that version back as current).

A create, an update or a delete first claims the name in ``node-type-claims:<account>`` with
the store's create-only write (``put_new``), so writes of one name take turns: of concurrent
creates exactly one finds no live type and saves version 1 (the others are a ``Conflict``),
and an update's ``If-Match`` check holds until its version is stored. An update or delete
waits a little for a held claim; a create does not (the name is being taken). The claim is
dropped when the write ends, and carries a TTL (``CLAIM_TTL``) so that a process that died
mid-write does not block the name for longer.

Deleting a type removes its current record: flows can no longer use it, and its versions stay
(a type defined again under that name continues the numbering).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from flowrunner.custom_types.spec import CustomTypeSpec
from flowrunner.errors import Conflict, InvalidInput, NotFound
from flowrunner.storage import Page, Store
from flowrunner.storage.protocols import DEFAULT_LIMIT, MAX_LIMIT

SYSTEM = "_system"
NS_CURRENT = "node-types:"
NS_VERSIONS = "node-type-versions:"
NS_SEQ = "node-type-seq:"
NS_CLAIMS = "node-type-claims:"
CLAIM_TTL = timedelta(seconds=60)
UPDATE_ATTEMPTS = 64
"""Tries of an update or delete to take a claim another write holds (jittered waits of a few
ms each)."""
_SETTLE_ROUNDS = 8


@dataclass(frozen=True, slots=True)
class CustomType:
    """One version of an account's node type."""

    account_id: str
    version: int
    spec: CustomTypeSpec
    author: str | None
    created_at: datetime
    message: str | None = None

    @property
    def name(self) -> str:
        return self.spec.name

    def to_json(self) -> dict[str, Any]:
        return {
            **self.spec.to_json(),
            "account_id": self.account_id,
            "version": self.version,
            "author": self.author,
            "created_at": self.created_at.isoformat(),
            "message": self.message,
        }

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> CustomType:
        spec = CustomTypeSpec(
            name=value["name"],
            description=value.get("description", ""),
            params=value.get("params", {"type": "object"}),
            script=value["script"],
            actions=tuple(value.get("actions", ())),
        )
        return cls(
            account_id=value["account_id"],
            version=int(value["version"]),
            spec=spec,
            author=value.get("author"),
            created_at=datetime.fromisoformat(value["created_at"]),
            message=value.get("message"),
        )


_TOP = 10**10 - 1


def _version_key(name: str, number: int) -> str:
    return f"{name}#{_TOP - number:010d}"


class CustomTypeStore:
    def __init__(self, store: Store) -> None:
        self._kv = store.kv

    async def current(self, account_id: str, name: str) -> CustomType:
        """The current version of a live type; NotFound otherwise."""
        entry = await self._kv.get(SYSTEM, NS_CURRENT + account_id, name)
        return CustomType.from_json(entry.value)

    async def all_current(self, account_id: str, *, limit: int = MAX_LIMIT) -> list[CustomType]:
        """Every live type of the account at its current version, by name (at most
        ``limit``: the service bounds how many an account holds)."""
        page = await self._kv.list(SYSTEM, NS_CURRENT + account_id, limit=limit)
        return [CustomType.from_json(e.value) for e in page.items]

    @contextlib.asynccontextmanager
    async def claimed(
        self, account_id: str, name: str, *, attempts: int = 1
    ) -> AsyncIterator[None]:
        """Hold the claim on ``name`` while inside: ``attempts`` tries to take it (a held
        one is waited for a little between tries), then ``Conflict``."""
        for attempt in range(attempts):
            try:
                await self._kv.put_new(SYSTEM, NS_CLAIMS + account_id, name, True, ttl=CLAIM_TTL)
                break
            except Conflict:
                if attempt + 1 < attempts:
                    await asyncio.sleep(random.uniform(0, 0.005 * (attempt + 1)))
        else:
            raise Conflict(
                f"node type '{name}' is being changed by another request; retry", name=name
            )
        try:
            yield
        finally:
            await self._kv.delete(SYSTEM, NS_CLAIMS + account_id, name)

    async def create(
        self,
        account_id: str,
        spec: CustomTypeSpec,
        *,
        author: str | None,
        message: str | None,
    ) -> CustomType:
        """Store ``spec`` as the first version of a name no live type holds (the next number,
        for a name deleted before); ``Conflict`` if one does or another write of that name is
        under way."""
        async with self.claimed(account_id, spec.name):
            try:
                await self.current(account_id, spec.name)
            except NotFound:
                return await self.save(account_id, spec, author=author, message=message)
            raise Conflict(f"node type '{spec.name}' exists: update it instead", name=spec.name)

    async def update(
        self,
        account_id: str,
        spec: CustomTypeSpec,
        *,
        expected_version: int | None,
        max_versions: int,
        author: str | None,
        message: str | None,
    ) -> CustomType:
        """Store ``spec`` as the next version of its live type; ``NotFound`` if there is none,
        ``Conflict`` if ``expected_version`` is given and not current, ``InvalidInput`` if
        the type has ``max_versions`` already. Writes of one name take turns (the claim), so
        the version checked is the one the new version follows."""
        name = spec.name
        async with self.claimed(account_id, name, attempts=UPDATE_ATTEMPTS):
            current = await self.current(account_id, name)
            if expected_version is not None and current.version != expected_version:
                raise Conflict(
                    f"node type '{name}' is at version {current.version}, not {expected_version}",
                    current_version=current.version,
                )
            if current.version >= max_versions:
                raise InvalidInput(
                    f"node type '{name}' has {max_versions} versions, the most one may have",
                    limit=max_versions,
                )
            return await self.save(account_id, spec, author=author, message=message)

    async def save(
        self,
        account_id: str,
        spec: CustomTypeSpec,
        *,
        author: str | None,
        message: str | None,
    ) -> CustomType:
        """Store ``spec`` as the next version of its name and make it current."""
        seq = await self._kv.increment(SYSTEM, NS_SEQ + account_id, spec.name)
        number = int(seq.value)
        saved = CustomType(account_id, number, spec, author, datetime.now(UTC), message)
        value = saved.to_json()
        await self._kv.put(SYSTEM, NS_VERSIONS + account_id, _version_key(spec.name, number), value)
        await self._kv.put(SYSTEM, NS_CURRENT + account_id, spec.name, value)
        await self._settle(account_id, spec.name, number)
        return saved

    async def _settle(self, account_id: str, name: str, mine: int) -> None:
        """Make the highest stored version current, whichever save's write came last."""
        for _ in range(_SETTLE_ROUNDS):
            newest = int((await self._kv.get(SYSTEM, NS_SEQ + account_id, name)).value)
            if newest <= mine:
                return
            try:
                entry = await self._kv.get(
                    SYSTEM, NS_VERSIONS + account_id, _version_key(name, newest)
                )
            except NotFound:
                return  # its save has not stored it yet: it makes it current itself
            try:
                head = await self.current(account_id, name)
            except NotFound:
                return  # deleted meanwhile
            if head.version >= newest:
                return
            await self._kv.put(SYSTEM, NS_CURRENT + account_id, name, entry.value)
            mine = newest

    async def version(self, account_id: str, name: str, number: int) -> CustomType:
        entry = await self._kv.get(SYSTEM, NS_VERSIONS + account_id, _version_key(name, number))
        return CustomType.from_json(entry.value)

    async def versions(
        self,
        account_id: str,
        name: str,
        *,
        limit: int = DEFAULT_LIMIT,
        cursor: str | None = None,
    ) -> Page[CustomType]:
        """Newest first."""
        page = await self._kv.list(
            SYSTEM, NS_VERSIONS + account_id, prefix=f"{name}#", limit=limit, cursor=cursor
        )
        return Page([CustomType.from_json(e.value) for e in page.items], page.next_cursor)

    async def delete(self, account_id: str, name: str) -> CustomType:
        """Remove the live type (its versions stay); the version it was at. Under the claim:
        an update under way is not undone by it, nor does it bring the type back."""
        async with self.claimed(account_id, name, attempts=UPDATE_ATTEMPTS):
            current = await self.current(account_id, name)
            if not await self._kv.delete(SYSTEM, NS_CURRENT + account_id, name):
                raise NotFound("node type not found", name=name)
            return current
