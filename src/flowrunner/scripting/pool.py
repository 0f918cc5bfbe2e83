"""The pool of sandbox workers: borrowing one per request, and replacement.

A worker that timed out, died, or announced it is exiting is never reused: it is killed and
a fresh one is spawned in the background, so the caller of that one evaluation sees one clear
error and every later evaluation a clean isolate. Idle workers are handed out last-in,
first-out, which keeps one worker's compiled-snippet cache hot under light load.

Workers start on demand: ``start`` spawns one, and another is spawned only when every live
worker is busy (up to ``size``). With ``idle_seconds`` set, a worker left idle that long is
closed (all of them, on a quiet server: V8 isolates are ~70 MB each), and the next evaluation
starts one again.

Healthy workers are recycled too (see ``Recycling``): after a number of evaluations, or once
the process's resident memory passes a mark, a replacement is started in the background
while the old worker keeps serving; when the replacement is ready it takes the old one's
place and the old one is closed between two evaluations. No evaluation fails or waits for it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

from flowrunner.errors import SandboxError, ScriptTimeout
from flowrunner.scripting.codec import Reply
from flowrunner.scripting.process import AsyncWorker, Limits
from flowrunner.scripting.worker import EXITING

_ACQUIRE_TIMEOUT = 30.0
# Resident memory is read from /proc every this many evaluations of a worker (a file read
# on the event loop: cheap, but not free).
_RSS_CHECK_EVERY = 256
# After a replacement failed to start, the old worker serves this many more evaluations
# before the next attempt, so a broken spawn does not turn into a spawn loop.
_RETRY_AFTER = 1000


@dataclass(frozen=True, slots=True)
class Recycling:
    """When a healthy worker is replaced: after ``max_evaluations`` evaluations, or once its
    resident memory passes ``max_rss_mb`` (0 turns either trigger off)."""

    max_evaluations: int = 100_000
    max_rss_mb: int = 384

    def __post_init__(self) -> None:
        if self.max_evaluations < 0 or self.max_rss_mb < 0:
            raise ValueError("recycling limits must be 0 (off) or positive")


class WorkerPool:
    """A fixed number of workers; `call` borrows one for a single request."""

    def __init__(
        self,
        size: int,
        limits: Limits,
        recycling: Recycling | None = None,
        *,
        idle_seconds: float = 0.0,
    ) -> None:
        if size < 1:
            raise ValueError("a sandbox needs at least one worker")
        if idle_seconds < 0:
            raise ValueError("idle_seconds must be 0 (never) or positive")
        self.idle_seconds = idle_seconds
        self.shrunk = 0  # workers closed for being idle (for diagnostics and benches)
        self._waiting = 0  # callers waiting for an idle worker
        self._reaper: asyncio.Task[None] | None = None
        self.size = size
        self.limits = limits
        self.recycling = recycling or Recycling()
        self.recycled = 0  # healthy workers replaced so far (for diagnostics and benches)
        self.killed = 0  # workers that timed out, died or were leaving, killed (metrics)
        self._idle: asyncio.LifoQueue[AsyncWorker] = asyncio.LifoQueue()
        self._busy: set[AsyncWorker] = set()
        self._live: set[AsyncWorker] = set()
        self._spawning = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._last_spawn_error: BaseException | None = None
        self._closed = False

    async def start(self) -> None:
        """Start the first worker (the others start when they are needed)."""
        try:
            worker = await AsyncWorker.spawn(self.limits)
        except (OSError, SandboxError, TimeoutError) as exc:
            reason = str(exc) or type(exc).__name__
            raise SandboxError(f"the sandbox workers could not start: {reason}") from exc
        self._live.add(worker)
        self._park(worker)
        if self.idle_seconds and self._reaper is None:
            self._reaper = asyncio.create_task(self._reap_idle())

    def _park(self, worker: AsyncWorker) -> None:
        worker.idle_since = asyncio.get_running_loop().time()
        self._idle.put_nowait(worker)

    @property
    def alive(self) -> int:
        return len(self._live)

    @property
    def spawn_error(self) -> BaseException | None:
        """Why the last worker start failed, until one starts again (readiness)."""
        return self._last_spawn_error

    @property
    def pids(self) -> list[int]:
        """Process ids of the live workers (for tests and diagnostics)."""
        return sorted(w.pid for w in self._live)

    async def call(self, request: bytes, seconds: float) -> Reply:
        worker = await self._acquire()
        reusable = False
        try:
            async with asyncio.timeout(seconds):
                reply = await worker.call(request)
            reusable = not reply.flags & EXITING
            return reply
        except TimeoutError:
            raise ScriptTimeout(f"script timed out after {round(seconds * 1000)} ms") from None
        finally:
            self._busy.discard(worker)
            if reusable and not self._closed and not worker.retired:
                self._park(worker)
                self._recycle_if_due(worker)
            else:
                self._background(self._retire(worker))

    async def _acquire(self) -> AsyncWorker:
        if self._closed:
            raise SandboxError("the sandbox is closed")
        while not self._idle.empty():  # the common case: no waiting, no timer
            worker = self._idle.get_nowait()
            if worker.alive:
                self._busy.add(worker)
                return worker
            self._background(self._retire(worker))
        # On demand: one more worker when none is idle for this caller (and the ones
        # already starting are spoken for by earlier waiters).
        if self._waiting + 1 > self._idle.qsize() + self._spawning and self._room():
            self._spawning += 1
            self._background(self._spawn())
        self._waiting += 1
        try:
            async with asyncio.timeout(_ACQUIRE_TIMEOUT):
                worker = await self._idle.get()
                # A worker can die while idle (OOM killer, an operator's kill): replace it
                # rather than fail an innocent evaluation.
                while not worker.alive:
                    self._background(self._retire(worker))
                    worker = await self._idle.get()
        except TimeoutError:
            cause = self._last_spawn_error
            reason = (str(cause) or type(cause).__name__) if cause is not None else ""
            raise SandboxError(
                "no sandbox worker became available" + (f": {reason}" if reason else "")
            ) from cause
        finally:
            self._waiting -= 1
        self._busy.add(worker)
        return worker

    def _room(self) -> bool:
        return len(self._live) + self._spawning < self.size

    def _background(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _spawn(self) -> None:
        try:
            worker = await AsyncWorker.spawn(self.limits)
        except (OSError, SandboxError, TimeoutError) as exc:
            self._last_spawn_error = exc
            return
        finally:
            self._spawning -= 1
        self._last_spawn_error = None
        if self._closed:
            await worker.kill()
        else:
            self._live.add(worker)
            self._park(worker)

    async def _retire(self, worker: AsyncWorker) -> None:
        if not self._closed:
            self.killed += 1
        self._live.discard(worker)
        await worker.kill()
        # A replacement only for someone waiting; otherwise the next caller starts one.
        if not self._closed and self._waiting > self._spawning and self._room():
            self._spawning += 1
            await self._spawn()

    async def _reap_idle(self) -> None:
        """Close the workers idle for ``idle_seconds`` (checked a few times per period)."""
        loop = asyncio.get_running_loop()
        while not self._closed:
            await asyncio.sleep(max(self.idle_seconds / 4, 0.05))
            cutoff = loop.time() - self.idle_seconds
            # Synchronous: nothing runs in between; an idle queue with items has no waiters.
            parked: list[AsyncWorker] = []
            while not self._idle.empty():
                parked.append(self._idle.get_nowait())  # most recently used first
            for worker in reversed(parked):
                if worker.idle_since > cutoff:
                    self._idle.put_nowait(worker)
                else:
                    self._live.discard(worker)
                    self.shrunk += 1
                    self._background(worker.close())

    def _recycle_if_due(self, worker: AsyncWorker) -> None:
        if worker.replacing or worker.evaluations < worker.recycle_at:
            return
        policy = self.recycling
        due = bool(policy.max_evaluations) and worker.evaluations >= policy.max_evaluations
        if not due and policy.max_rss_mb and worker.evaluations % _RSS_CHECK_EVERY == 0:
            rss = worker.rss_mb()
            due = rss is not None and rss > policy.max_rss_mb
        if due:
            worker.replacing = True
            self._background(self._replace(worker))

    async def _replace(self, old: AsyncWorker) -> None:
        """Start a successor for ``old``; once it is ready, it serves instead of ``old``."""
        try:
            fresh = await AsyncWorker.spawn(self.limits)
        except (OSError, SandboxError, TimeoutError) as exc:
            self._last_spawn_error = exc
            old.replacing = False
            old.recycle_at = old.evaluations + _RETRY_AFTER
            return
        if self._closed or old not in self._live:
            # Closing, or ``old`` died meanwhile and was replaced the ordinary way.
            await fresh.kill()
            return
        old.retired = True  # from now on it is never handed out again
        self._live.discard(old)
        self._live.add(fresh)
        idle = self._withdraw(old)
        self._park(fresh)
        self.recycled += 1
        if idle:
            await old.close()
        # A busy ``old`` is retired when its evaluation ends (see ``call``).

    def _withdraw(self, worker: AsyncWorker) -> bool:
        """Take ``worker`` out of the idle queue, keeping the others' order; False if absent.

        Synchronous, so nothing runs in between; an idle queue with items has no waiters.
        """
        others: list[AsyncWorker] = []
        found = False
        while not self._idle.empty():
            item = self._idle.get_nowait()
            if item is worker:
                found = True
            else:
                others.append(item)
        for item in reversed(others):
            self._idle.put_nowait(item)
        return found

    async def close(self) -> None:
        self._closed = True
        if self._reaper is not None:
            self._reaper.cancel()
            await asyncio.gather(self._reaper, return_exceptions=True)
        idle: list[AsyncWorker] = []
        while not self._idle.empty():
            idle.append(self._idle.get_nowait())
        await asyncio.gather(*(w.close() for w in idle), *(w.kill() for w in self._busy))
        self._live.clear()
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
