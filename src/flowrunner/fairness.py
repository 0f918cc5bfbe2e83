"""Fair sharing of a bounded resource between accounts, so one cannot starve the others.

A :class:`FairSemaphore` has ``capacity`` slots and a cap per key (an account id). A freed
slot goes to the waiting key that holds the fewest slots, ties broken round-robin (the key
whose last grant is oldest first); within one key, in arrival order; a key at its cap is
skipped. So an account queuing a hundred requests cannot push another account's first
request behind them: the newcomer holds nothing, so it gets the next free slot.

The executor admits runs through one (its slots are the process's run concurrency), the
sandbox lends its workers through another. Two context variables carry what the engine in
between knows nothing about: :data:`ACCOUNT_ID`, the account a task works for (set by the
runner, read by the sandbox), and :data:`RUN_SLOT`, the current run's :class:`Slot` (set by
the executor), which :func:`idle` lets go while a ``delay`` node sleeps. Context variables
rather than parameters because the path from the runner to a sandbox call crosses the
engine, expressions and every node type; tasks copy the context, so batch items and
sub-flows inherit both.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

ACCOUNT_ID: contextvars.ContextVar[str] = contextvars.ContextVar(
    "flowrunner_account_id", default=""
)
"""The account the current task works for ("" outside a run: one shared key)."""


class FairSemaphore:
    """``capacity`` slots shared fairly between keys, at most ``per_key`` held by one key."""

    def __init__(self, capacity: int, *, per_key: int | None = None) -> None:
        if capacity < 1:
            raise ValueError("capacity must be >= 1")
        if per_key is not None and per_key < 1:
            raise ValueError("per_key must be >= 1")
        self.capacity = capacity
        self.per_key = capacity if per_key is None else min(per_key, capacity)
        self._held: dict[str, int] = {}
        self._total = 0
        self._waiting: dict[str, deque[asyncio.Future[None]]] = {}
        # When each key holding or waiting was last granted a slot (a grant counter): the
        # round-robin order among keys holding as many.
        self._granted = 0
        self._last_grant: dict[str, int] = {}

    @property
    def in_use(self) -> int:
        return self._total

    def held(self, key: str) -> int:
        return self._held.get(key, 0)

    def waiting(self, key: str) -> int:
        return len(self._waiting.get(key, ()))

    def try_acquire(self, key: str) -> bool:
        """Take a slot now if ``acquire`` would grant one without waiting; False otherwise."""
        if key not in self._waiting and self._grantable(key):
            self._take(key)
            return True
        return False

    async def acquire(self, key: str) -> None:
        # Invariant after every call: no waiter could be granted. So a slot that is free now
        # is one no waiter may take, and taking it at once skips nobody (except this key's
        # own earlier waiters, which keep their turn).
        if key not in self._waiting and self._grantable(key):
            self._take(key)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(key, deque()).append(future)
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self.release(key)  # granted as the waiter was canceled: pass the slot on
            else:
                self._forget(key, future)
            raise

    def release(self, key: str) -> None:
        count = self._held.get(key, 0)
        if count < 1:
            raise RuntimeError(f"release for {key!r}, which holds no slot")
        if count == 1:
            del self._held[key]
            if key not in self._waiting:
                self._last_grant.pop(key, None)
        else:
            self._held[key] = count - 1
        self._total -= 1
        self._grant()

    def _grantable(self, key: str) -> bool:
        return self._total < self.capacity and self._held.get(key, 0) < self.per_key

    def _take(self, key: str) -> None:
        self._held[key] = self._held.get(key, 0) + 1
        self._total += 1
        self._granted += 1
        self._last_grant[key] = self._granted

    def _grant(self) -> None:
        while self._total < self.capacity:
            key = self._next_key()
            if key is None:
                return
            queue = self._waiting[key]
            future = queue.popleft()
            if not queue:
                del self._waiting[key]
            if future.done():
                # Its task was canceled and has not run its handler yet: the handler finds
                # the future canceled and out of the queue, and takes nothing.
                if key not in self._waiting and key not in self._held:
                    self._last_grant.pop(key, None)
                continue
            self._take(key)  # counted now, so a second release cannot grant it twice
            future.set_result(None)

    def _next_key(self) -> str | None:
        """The waiting key under its cap holding the fewest slots; among equals, the one
        granted longest ago (never: first), then the one waiting longest."""
        best: str | None = None
        best_rank = (self.per_key, 0)
        for key in self._waiting:
            rank = (self._held.get(key, 0), self._last_grant.get(key, 0))
            if rank < best_rank:
                best, best_rank = key, rank
        return best

    def _forget(self, key: str, future: asyncio.Future[None]) -> None:
        queue = self._waiting.get(key)
        if queue is None:
            return
        try:
            queue.remove(future)
        except ValueError:
            return
        if not queue:
            del self._waiting[key]
            if key not in self._held:
                self._last_grant.pop(key, None)


class Slot:
    """One run's claim on a :class:`FairSemaphore`, which it lets go while it only sleeps.

    With parallel branches in one run (a batch, sub-flows), the first branch to sleep lets
    the slot go and every branch that wakes waits until the run holds it again; branches
    that never sleep carry on meanwhile (the slot admits runs, it does not meter them).
    """

    def __init__(self, semaphore: FairSemaphore, key: str) -> None:
        self._semaphore = semaphore
        self.key = key
        self.held = False
        self._sleepers = 0
        self._retaking = asyncio.Lock()

    async def take(self) -> None:
        """Hold the slot (waiting fairly for it); at once if held already."""
        async with self._retaking:
            if not self.held:
                await self._semaphore.acquire(self.key)
                self.held = True

    def give_back(self) -> None:
        if self.held:
            self.held = False
            self._semaphore.release(self.key)

    @asynccontextmanager
    async def idle(self) -> AsyncIterator[None]:
        self._sleepers += 1
        if self._sleepers == 1:
            self.give_back()
        try:
            yield
        finally:
            self._sleepers -= 1
        # Only after a sleep that ended normally: a canceled run must not queue for a slot
        # to record that it is canceled. A node timeout that cut the sleep short leaves the
        # slot to be taken back when the next node starts (``reclaim``).
        await self.take()


RUN_SLOT: contextvars.ContextVar[Slot | None] = contextvars.ContextVar(
    "flowrunner_run_slot", default=None
)
"""The executor slot of the run the current task belongs to (None outside an executor)."""


@asynccontextmanager
async def idle() -> AsyncIterator[None]:
    """Let the current run's executor slot go for the body (a sleep) and take it back, in
    fair order, afterwards. Outside an executor (``flowrunner run``, tests) it does nothing."""
    slot = RUN_SLOT.get()
    if slot is None:
        yield
        return
    async with slot.idle():
        yield


async def reclaim() -> None:
    """Take the current run's slot back if a sleep cut short let it go (a node starts)."""
    slot = RUN_SLOT.get()
    if slot is not None and not slot.held:
        await slot.take()
