"""A bound on the mail connections a process holds at once, shared fairly between accounts.

Each email node visit opens one SMTP or IMAP connection. Without a bound, one account's flow
batching over thousands of recipients would open as many connections as its batch allows
and keep other accounts' mail waiting behind the executor; with it, at most
``MAX_CONNECTIONS`` are open per event loop, each account at most half of them, and a freed
slot goes to the waiting account that holds the fewest (``fairness.FairSemaphore``).
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from flowrunner.fairness import ACCOUNT_ID, FairSemaphore

__all__ = ["MAX_CONNECTIONS", "connection_slot"]

MAX_CONNECTIONS = 32

# One semaphore per event loop (a semaphore's futures belong to the loop that made them).
_SLOTS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, FairSemaphore] = (
    weakref.WeakKeyDictionary()
)


@asynccontextmanager
async def connection_slot() -> AsyncIterator[None]:
    """Hold one of the loop's mail connection slots for the body."""
    loop = asyncio.get_running_loop()
    semaphore = _SLOTS.get(loop)
    if semaphore is None:
        semaphore = _SLOTS[loop] = FairSemaphore(MAX_CONNECTIONS, per_key=MAX_CONNECTIONS // 2)
    key = ACCOUNT_ID.get()
    await semaphore.acquire(key)
    try:
        yield
    finally:
        semaphore.release(key)
