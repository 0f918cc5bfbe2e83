"""The pool of sandbox workers: borrowing one per request, and replacement.

A worker that timed out, died, or announced it is exiting is never reused: it is killed and
a fresh one is spawned in the background, so the caller of that one evaluation sees one clear
error and every later evaluation a clean isolate. Idle workers are handed out last-in,
first-out, which keeps one worker's compiled-snippet cache hot under light load.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

from flowrunner.errors import SandboxError, ScriptTimeout
from flowrunner.scripting.codec import Reply
from flowrunner.scripting.process import AsyncWorker, Limits
from flowrunner.scripting.worker import EXITING

_ACQUIRE_TIMEOUT = 30.0


class WorkerPool:
    """A fixed number of workers; `call` borrows one for a single request."""

    def __init__(self, size: int, limits: Limits) -> None:
        if size < 1:
            raise ValueError("a sandbox needs at least one worker")
        self.size = size
        self.limits = limits
        self._idle: asyncio.LifoQueue[AsyncWorker] = asyncio.LifoQueue()
        self._busy: set[AsyncWorker] = set()
        self._live: set[AsyncWorker] = set()
        self._spawning = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._last_spawn_error: BaseException | None = None
        self._closed = False

    async def start(self) -> None:
        spawned = await asyncio.gather(
            *(AsyncWorker.spawn(self.limits) for _ in range(self.size)), return_exceptions=True
        )
        workers = [w for w in spawned if isinstance(w, AsyncWorker)]
        failure = next((e for e in spawned if isinstance(e, BaseException)), None)
        if failure is not None:
            await asyncio.gather(*(w.kill() for w in workers))  # no half-started pool
            reason = str(failure) or type(failure).__name__
            raise SandboxError(f"the sandbox workers could not start: {reason}") from failure
        for worker in workers:
            self._live.add(worker)
            self._idle.put_nowait(worker)

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
            if reusable and not self._closed:
                self._idle.put_nowait(worker)
            else:
                self._background(self._retire(worker))

    async def _acquire(self) -> AsyncWorker:
        if self._closed:
            raise SandboxError("the sandbox is closed")
        while self._idle.qsize() + len(self._busy) + self._spawning < self.size:
            self._spawning += 1
            self._background(self._spawn())
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
        self._busy.add(worker)
        return worker

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
        if self._closed:
            await worker.kill()
        else:
            self._live.add(worker)
            self._idle.put_nowait(worker)

    async def _retire(self, worker: AsyncWorker) -> None:
        self._live.discard(worker)
        await worker.kill()
        if not self._closed and self._idle.qsize() + len(self._busy) + self._spawning < self.size:
            self._spawning += 1
            await self._spawn()

    async def close(self) -> None:
        self._closed = True
        idle: list[AsyncWorker] = []
        while not self._idle.empty():
            idle.append(self._idle.get_nowait())
        await asyncio.gather(*(w.close() for w in idle), *(w.kill() for w in self._busy))
        self._live.clear()
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
