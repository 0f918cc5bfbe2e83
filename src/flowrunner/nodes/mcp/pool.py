"""How many MCP sessions a process holds, and the pooled sessions kept between runs.

Each session may be a child process (stdio), so they are bounded like connections: at most
``max_sessions`` per-visit sessions are open per event loop, each account at most half of
them, a freed slot going to the waiting account that holds the fewest (``session_slot``).

A node with ``pool: true`` reuses one session per account and server (``SessionPool``)
instead of connecting on every visit. A pooled session is owned by a task of its own (the
SDK's task groups must be entered and left by one task) and closes itself after
``idle_seconds`` unused. The pool holds at most ``size`` sessions, one account at most half
of them; when it is full the least recently used idle session is closed to make room, and
when none is idle the visit connects on its own, as without ``pool``. A session whose
server went away is dropped, so the next visit reconnects. Runs of one account never share
a session with another account's.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager

from flowrunner.fairness import ACCOUNT_ID, FairSemaphore
from flowrunner.nodes.mcp.errors import McpConnectionFailed
from flowrunner.nodes.mcp.server import McpSettings, ServerSpec
from flowrunner.nodes.mcp.session import McpSession, open_session

__all__ = ["SessionPool", "close_pool", "pooled_session", "session_slot"]

_SLOTS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[int, FairSemaphore]] = (
    weakref.WeakKeyDictionary()
)
_POOLS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, SessionPool] = (
    weakref.WeakKeyDictionary()
)


@asynccontextmanager
async def session_slot(max_sessions: int) -> AsyncIterator[None]:
    """Hold one of the loop's ``max_sessions`` session slots for the body, fairly."""
    slots = _SLOTS.setdefault(asyncio.get_running_loop(), {})
    semaphore = slots.get(max_sessions)
    if semaphore is None:
        semaphore = slots[max_sessions] = FairSemaphore(
            max_sessions, per_key=max(1, max_sessions // 2)
        )
    key = ACCOUNT_ID.get()
    await semaphore.acquire(key)
    try:
        yield
    finally:
        semaphore.release(key)


@asynccontextmanager
async def pooled_session(
    spec: ServerSpec, settings: McpSettings, where: str
) -> AsyncIterator[McpSession]:
    """The loop's pooled session for the current account and ``spec`` (see the module)."""
    loop = asyncio.get_running_loop()
    pool = _POOLS.get(loop)
    if pool is None or pool.size != settings.pool_size:
        pool = _POOLS[loop] = SessionPool(settings.pool_size, settings.pool_idle_seconds)
    async with pool.session(spec, settings, where) as session:
        yield session


async def close_pool() -> None:
    """Close the running loop's pooled sessions now (their processes end) and wait for it."""
    pool = _POOLS.pop(asyncio.get_running_loop(), None)
    if pool is not None:
        await pool.aclose()


class _Pooled:
    """One pooled session and the task that owns it."""

    def __init__(
        self,
        spec: ServerSpec,
        settings: McpSettings,
        idle_seconds: float,
        where: str,
        *,
        slot: bool = False,
    ) -> None:
        self.spec = spec
        # Whether the session holds one of the loop's session slots while it lives (a run's
        # sessions do; the pool bounds its own).
        self._slot = slot
        self._where = where  # the visit that opened it: named if connecting fails
        self.users = 0
        self.last_used = asyncio.get_running_loop().time()
        self.closed = False
        self._settings = settings
        self._idle = idle_seconds
        self._ready = asyncio.Event()
        self._closing = asyncio.Event()
        self._session: McpSession | None = None
        self._failure: BaseException | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self, on_closed: Callable[[_Pooled], None]) -> None:
        self._task = asyncio.get_running_loop().create_task(self._hold(on_closed))

    async def ready(self, where: str) -> McpSession:
        await self._ready.wait()
        if self._session is None:
            if self._failure is not None:
                raise self._failure
            raise McpConnectionFailed(
                f"{where}: the session with {self.spec.describe()} was closed before it was ready"
            )
        return self._session.for_node(where)

    def close(self) -> None:
        self.closed = True  # no new visit gets it from now on
        self._closing.set()
        if self._task is not None and not self._ready.is_set():
            # Still waiting for a session slot or connecting: nobody will use it now, and
            # whoever closes it must not wait for a slot to come free first.
            self._task.cancel()

    async def wait_closed(self) -> None:
        if self._task is not None:
            await asyncio.wait({self._task})

    async def _hold(self, on_closed: Callable[[_Pooled], None]) -> None:
        loop = asyncio.get_running_loop()
        try:
            async with AsyncExitStack() as stack:
                if self._slot:
                    await stack.enter_async_context(session_slot(self._settings.max_sessions))
                try:
                    async with asyncio.timeout(self._settings.timeout):
                        self._session = await stack.enter_async_context(
                            open_session(self.spec, self._settings, self._where)
                        )
                except TimeoutError:
                    raise McpConnectionFailed(
                        f"{self._where}: the MCP server {self.spec.describe()} did not "
                        f"answer within {self._settings.timeout:g} s of connecting"
                    ) from None
                self._ready.set()
                while not self._closing.is_set():
                    unused_for = loop.time() - self.last_used
                    if self.users == 0 and unused_for >= self._idle:
                        self.closed = True
                        break
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(max(self._idle - unused_for, 0.5)):
                            await self._closing.wait()
        except Exception as exc:  # recorded for the visits waiting on it, which raise it
            self._failure = exc
        finally:
            self.closed = True
            self._session = None if self._failure is not None else self._session
            self._ready.set()
            on_closed(self)


class SessionPool:
    """Pooled sessions of one event loop, keyed by account and server."""

    def __init__(self, size: int, idle_seconds: float) -> None:
        self.size = size
        self.per_account = max(1, size // 2)
        self._idle = idle_seconds
        self._entries: dict[tuple[str, ServerSpec], _Pooled] = {}
        # Every session whose task has not ended, also those evicted or dropped and still
        # closing: ``aclose`` waits for them all, so no process outlives the pool.
        self._live: set[_Pooled] = set()

    def __len__(self) -> int:
        return len(self._entries)

    @asynccontextmanager
    async def session(
        self, spec: ServerSpec, settings: McpSettings, where: str
    ) -> AsyncIterator[McpSession]:
        account = ACCOUNT_ID.get()
        key = (account, spec)
        entry = self._entries.get(key)
        if entry is None or entry.closed:
            if not self._make_room(account):
                async with (
                    session_slot(settings.max_sessions),
                    open_session(spec, settings, where) as session,
                ):
                    yield session
                return
            entry = self._entries[key] = _Pooled(spec, settings, self._idle, where)
            self._live.add(entry)
            entry.start(lambda done: self._ended(key, done))
        entry.users += 1
        try:
            session = await entry.ready(where)
            yield session
        except McpConnectionFailed:
            entry.close()  # the server went away: the next visit reconnects
            self._forget(key, entry)
            raise
        finally:
            entry.users -= 1
            entry.last_used = asyncio.get_running_loop().time()

    async def aclose(self) -> None:
        entries = list(self._live)
        self._entries.clear()
        for entry in entries:
            entry.close()
        for entry in entries:
            await entry.wait_closed()

    def _ended(self, key: tuple[str, ServerSpec], entry: _Pooled) -> None:
        self._live.discard(entry)
        self._forget(key, entry)

    def _forget(self, key: tuple[str, ServerSpec], entry: _Pooled) -> None:
        if self._entries.get(key) is entry:
            del self._entries[key]

    def _make_room(self, account: str) -> bool:
        """Whether a new session may be pooled for ``account``, closing an idle one if
        that makes room."""
        live = [(owner, e) for (owner, _), e in self._entries.items() if not e.closed]
        mine = [e for owner, e in live if owner == account]
        if len(mine) >= self.per_account:
            return self._evict(mine)
        if len(live) >= self.size:
            return self._evict([e for _, e in live])
        return True

    def _evict(self, candidates: list[_Pooled]) -> bool:
        idle = [e for e in candidates if e.users == 0 and not e.closed]
        if not idle:
            return False
        victim = min(idle, key=lambda e: e.last_used)
        victim.close()
        for key, entry in list(self._entries.items()):
            if entry is victim:
                del self._entries[key]
        return True
