"""A few seconds' memory of which account a Bearer token resolved to.

Every API request used to read the token and its account from the store (two reads, two
thread hops on SQLite) before doing anything. A client sending requests back to back presents
the same token each time, so the API remembers the resolution for ``ttl`` seconds.

What that costs: a token revoked, or an account disabled, **by another server process** is
still accepted by this one for at most ``ttl`` seconds; likewise a token expiring stays usable
up to ``ttl`` past its expiry. In this process, revoking a token, disabling an account or
changing a password forgets everything at once (``clear``), so the API's own answers are never
stale. Failed resolutions are never remembered: a bad token reaches the service (and its
audit) every time.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from cachetools import TTLCache

from flowrunner.storage import Account

DEFAULT_TTL_SECONDS = 5.0
# Bounds memory against clients cycling through many tokens; beyond it the least recently
# used resolution goes first.
MAX_ENTRIES = 10_000


class TokenCache:
    """Raw token → account, for ``ttl`` seconds. Not shared between processes."""

    def __init__(
        self,
        ttl: float = DEFAULT_TTL_SECONDS,
        *,
        max_entries: int = MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl = ttl
        self._entries: TTLCache[str, Account] = TTLCache(max_entries, max(ttl, 0), timer=clock)

    async def resolve(
        self, token: str, authenticate: Callable[[str], Awaitable[Account]]
    ) -> Account:
        """The account of ``token``: remembered, or from ``authenticate`` (then remembered)."""
        account = self._entries.get(token)
        if account is not None:
            return account
        account = await authenticate(token)
        if self._ttl > 0:
            self._entries[token] = account
        return account

    def clear(self) -> None:
        """Forget every resolution: after a revoke, a disable, a password change."""
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
