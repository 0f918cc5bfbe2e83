"""Which key ids have ever encrypted a stored secret, so a missing key is found at start.

The secret store can list secrets under a known key id but cannot list the key ids in use,
and a key that was dropped from the keyring too early is exactly one we no longer know. So
the vault notes every key id in the key-value store before the first ciphertext under it is
written, and rotation removes the note once no secret uses that id any more.

The notes live under a reserved owner id that no account can have (account ids are hex).
"""

from __future__ import annotations

from flowrunner.storage.protocols import MAX_LIMIT, Store

SYSTEM_OWNER = "_system"
NAMESPACE = "vault.key_ids"


class KeyIdRegistry:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._known: set[str] = set()

    async def note(self, kid: str) -> None:
        """Record ``kid`` as in use; one store write per key id per process."""
        if kid in self._known:
            return
        await self._store.kv.put(SYSTEM_OWNER, NAMESPACE, kid, {"in_use": True})
        self._known.add(kid)

    async def forget(self, kid: str) -> None:
        await self._store.kv.delete(SYSTEM_OWNER, NAMESPACE, kid)
        self._known.discard(kid)

    async def key_ids(self) -> list[str]:
        ids: list[str] = []
        cursor: str | None = None
        while True:
            page = await self._store.kv.list(
                SYSTEM_OWNER, NAMESPACE, limit=MAX_LIMIT, cursor=cursor
            )
            ids.extend(entry.key for entry in page.items)
            if page.next_cursor is None:
                return ids
            cursor = page.next_cursor
