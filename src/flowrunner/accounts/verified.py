"""A short memory of passwords just verified, so HTTP Basic clients do not pay argon2 on
every request.

argon2 costs tens of milliseconds of CPU by design; a script using Basic authentication
sends the same credentials with every call, and checking them each time would cap the API
at a few dozen requests per second per core. Entries are keyed by an HMAC (a random key per
process) of the account id, its current password hash and the password: nothing reusable is
kept, a changed password (new hash) misses at once, and entries expire after ``ttl``.

The trade-off: for ``ttl`` seconds, a copy of this process's memory would allow a fast
(HMAC, not argon2) offline guess of recently used passwords. Set the ttl to 0 to disable.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import time
from collections.abc import Callable

from cachetools import TTLCache

from flowrunner.storage.records import Account


class VerifiedCache:
    """HMAC keys of (account, password hash, password) verified less than ``ttl`` ago; beyond
    ``max_entries`` the least recently used go first."""

    def __init__(
        self,
        *,
        ttl: float = 300.0,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl = ttl
        self._secret = os.urandom(32)
        self._entries: TTLCache[bytes, bool] = TTLCache(max_entries, max(ttl, 0), timer=clock)

    def hit(self, account: Account, password: str) -> bool:
        return self._ttl > 0 and self._key(account, password) in self._entries

    def add(self, account: Account, password: str) -> None:
        if self._ttl > 0:
            self._entries[self._key(account, password)] = True

    def _key(self, account: Account, password: str) -> bytes:
        material = "\0".join((account.id, account.password_hash, password)).encode()
        return hmac.new(self._secret, material, hashlib.sha256).digest()
