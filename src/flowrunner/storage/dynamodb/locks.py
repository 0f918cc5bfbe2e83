"""Per-key asyncio locks: writers of one process queue up instead of racing each other.

Sequence-numbered appends (events, audit chains, flow versions) are optimistic: a writer that
loses a race re-reads and retries. Between processes that is the only option, but inside one
process N concurrent writers of the same key would turn every append into N round trips of
which N-1 fail. Queueing them locally first keeps conflicts for genuinely concurrent processes;
correctness never depends on these locks, only throughput does.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Hashable
from contextlib import asynccontextmanager


class KeyedLocks:
    def __init__(self) -> None:
        self._locks: dict[Hashable, asyncio.Lock] = {}
        self._users: dict[Hashable, int] = {}

    @asynccontextmanager
    async def hold(self, key: Hashable) -> AsyncIterator[None]:
        lock = self._locks.setdefault(key, asyncio.Lock())
        self._users[key] = self._users.get(key, 0) + 1
        try:
            async with lock:
                yield
        finally:
            # Forget the lock when nobody holds or waits for it, so the dict stays small.
            self._users[key] -= 1
            if self._users[key] == 0:
                del self._users[key]
                del self._locks[key]
