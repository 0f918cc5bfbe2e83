"""Encrypted secrets in memory."""

from __future__ import annotations

from collections.abc import Mapping

from flowrunner.errors import NotFound
from flowrunner.storage.memory.state import MemoryState, json_copy, page_by_name
from flowrunner.storage.protocols import DEFAULT_LIMIT
from flowrunner.storage.records import JSONValue, Page, Secret


class MemorySecrets:
    def __init__(self, state: MemoryState) -> None:
        self._s = state

    async def put(
        self,
        account_id: str,
        key: str,
        *,
        ciphertext: bytes,
        key_id: str,
        metadata: Mapping[str, JSONValue] | None = None,
    ) -> Secret:
        async with self._s.lock:
            now = self._s.clock()
            old = self._s.secrets.get((account_id, key))
            secret = Secret(
                account_id,
                key,
                bytes(ciphertext),
                key_id,
                json_copy(dict(metadata or {})),
                old.created_at if old else now,
                now,
            )
            self._s.secrets[(account_id, key)] = secret
            return secret

    async def get(self, account_id: str, key: str) -> Secret:
        try:
            return self._s.secrets[(account_id, key)]
        except KeyError:
            raise NotFound("secret not found", account_id=account_id, key=key) from None

    async def delete(self, account_id: str, key: str) -> None:
        async with self._s.lock:
            if self._s.secrets.pop((account_id, key), None) is None:
                raise NotFound("secret not found", account_id=account_id, key=key)

    async def list(
        self,
        account_id: str,
        *,
        limit: int = DEFAULT_LIMIT,
        cursor: str | None = None,
        key_prefix: str = "",
    ) -> Page[Secret]:
        rows = [
            s
            for (acc, k), s in self._s.secrets.items()
            if acc == account_id and k.startswith(key_prefix)
        ]
        return page_by_name(rows, limit=limit, cursor=cursor, key=lambda s: s.key)

    async def admin_list_by_key_id(
        self, key_id: str, *, limit: int = DEFAULT_LIMIT, cursor: str | None = None
    ) -> Page[Secret]:
        rows = [s for s in self._s.secrets.values() if s.key_id == key_id]
        # (account, key) is the identity; a NUL separator keeps the composite order unambiguous.
        return page_by_name(
            rows, limit=limit, cursor=cursor, key=lambda s: f"{s.account_id}\x00{s.key}"
        )
