"""Syntax checks for synchronous callers, on the same worker code as every evaluation.

Validation is synchronous (the loader checks a flow's JavaScript while it reads the flow),
and workers are driven from an event loop. So the checker keeps a one-worker ``WorkerPool``
on an event loop of its own, in a thread of its own, both started on first use; a check
hands its request to that loop and blocks until the answer comes. A syntax check thereby
gets the same worker process, limits, timeout and replacement of a dead worker as an
evaluation, without a second, blocking implementation of the worker's protocol. The loop
being its own, a check made from a coroutine (the CLI validates inside ``asyncio.run``)
blocks that coroutine's loop for the hop, never deadlocks it.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from flowrunner.errors import SandboxError
from flowrunner.scripting.codec import Reply
from flowrunner.scripting.pool import WorkerPool
from flowrunner.scripting.process import Limits

__all__ = ["SyntaxChecker"]

T = TypeVar("T")


class SyntaxChecker:
    """One sandbox worker behind a blocking ``call``; thread-safe."""

    def __init__(self, limits: Limits, *, idle_seconds: float = 0.0) -> None:
        self._limits = limits
        self._idle_seconds = idle_seconds  # the worker is closed when idle this long
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._pool: WorkerPool | None = None
        self._closed = False

    @property
    def pids(self) -> list[int]:
        """The worker's process id (none before the first call)."""
        return self._pool.pids if self._pool is not None else []

    def call(self, request: bytes, timeout: float) -> Reply:
        """Send ``request`` to the worker and wait for its reply, ``timeout`` seconds at most
        once the worker has it (``ScriptTimeout`` after that, and a fresh worker next time)."""
        pool = self._started()
        return self._wait(pool.call(request, timeout))

    def close(self) -> None:
        """Stop the worker and the thread; a call after this is a ``SandboxError``."""
        with self._lock:
            self._closed = True
            loop, thread, pool = self._loop, self._thread, self._pool
            self._loop = self._thread = self._pool = None
        if loop is None or thread is None:
            return
        if pool is not None:
            asyncio.run_coroutine_threadsafe(pool.close(), loop).result()
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()

    def _started(self) -> WorkerPool:
        with self._lock:
            if self._closed:
                raise SandboxError("the sandbox is closed")
            if self._pool is not None:
                return self._pool
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(
                    target=loop.run_forever, name="sandbox-syntax-check", daemon=True
                )
                thread.start()
                self._loop, self._thread = loop, thread
            pool = WorkerPool(1, self._limits, idle_seconds=self._idle_seconds)
            # Under the lock, so concurrent first calls start one worker, not one each.
            asyncio.run_coroutine_threadsafe(pool.start(), self._loop).result()
            self._pool = pool
            return pool

    def _wait(self, work: Coroutine[Any, Any, T]) -> T:
        loop = self._loop
        if loop is None:
            work.close()
            raise SandboxError("the sandbox is closed")
        return asyncio.run_coroutine_threadsafe(work, loop).result()
