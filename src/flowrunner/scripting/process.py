"""One sandbox worker process, driven from the event loop.

``AsyncWorker`` serves the pool (one request in flight, replies read by a protocol on the
loop) and translates a dead worker into ``ScriptResourceError`` with how it died.
Synchronous callers (syntax checks during validation) reach a worker through
``checker.SyntaxChecker``, which drives the same code from a loop of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from typing import IO, cast

from flowrunner.errors import SandboxError, ScriptResourceError
from flowrunner.scripting import worker as worker_module
from flowrunner.scripting.codec import Reply
from flowrunner.scripting.worker import RESPONSE

# Baseline writable memory of a worker with V8 started is ~560 MB of mostly untouched
# reservations; the OS cap sits above that plus a multiple of the JS heap limit.
_DATA_BASE_MB = 640
_SPAWN_TIMEOUT = 20.0
# How much of a dead worker's stderr is searched for the reason it died.
_STDERR_SCAN = 64 * 1024
_EXCEPTION_LINE = re.compile(r"[A-Za-z_][\w.]*(Error|Exception|Exit)\b")
_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


@dataclass(frozen=True, slots=True)
class Limits:
    heap_mb: int
    max_result_bytes: int

    @property
    def data_mb(self) -> int:
        return _DATA_BASE_MB + 4 * self.heap_mb

    @property
    def max_reply_bytes(self) -> int:
        # Never trust a length header beyond what a worker may legitimately send.
        return self.max_result_bytes + 2_000_000

    def argv(self, fd: int) -> list[str]:
        path = worker_module.__file__
        args = [str(fd), str(self.heap_mb), str(self.max_result_bytes), str(self.data_mb)]
        return [sys.executable, "-I", path, *args]


def _stderr() -> IO[bytes] | None:
    """Where a worker's stderr goes: the server's own when debugging, else a private unlinked
    file, read only when the worker dies (V8's fatal errors and a failed start land there)."""
    return None if os.environ.get("FLOWRUNNER_SANDBOX_DEBUG") else tempfile.TemporaryFile()


def _reason(stderr: IO[bytes] | None) -> str:
    """The line of a dead worker's stderr that says why: V8's "Fatal ..." line, else the
    last exception line of a Python traceback, else the last line; "" if there is none."""
    if stderr is None:
        return ""
    try:
        stderr.seek(0)
        head = stderr.read(_STDERR_SCAN).decode(errors="replace")
    except (OSError, ValueError):
        return ""
    lines = [line.strip("# \t") for line in head.splitlines()]
    lines = [line for line in lines if line]
    fatal = next((line for line in lines if line.startswith("Fatal")), None)
    exception = next((line for line in reversed(lines) if _EXCEPTION_LINE.match(line)), None)
    reason = fatal or exception or (lines[-1] if lines else "")
    return reason[:300]


def _how(returncode: int | None) -> str:
    if returncode is not None and returncode < 0:
        return f"killed by {signal.Signals(-returncode).name}"
    return f"exit status {returncode}" if returncode is not None else "connection lost"


def _death_error(returncode: int | None, reason: str = "") -> ScriptResourceError:
    how = _how(returncode) + (f": {reason}" if reason else "")
    return ScriptResourceError(
        f"the script's sandbox worker died ({how}); it probably exceeded a memory limit"
    )


def _start_error(returncode: int | None, reason: str) -> SandboxError:
    how = _how(returncode) + (f": {reason}" if reason else "")
    return SandboxError(f"the sandbox worker failed to start ({how})")


class _ReplyReader(asyncio.Protocol):
    """Collects reply frames from the socket; cheaper than a StreamReader per request."""

    def __init__(self, limits: Limits) -> None:
        self._limits = limits
        self._buffer = bytearray()
        self._waiter: asyncio.Future[Reply] | None = None
        self.lost = False
        self.transport: asyncio.WriteTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Duck-typed on purpose: uvloop's Unix transport has every method of
        # asyncio.WriteTransport but is not a subclass of it.
        self.transport = cast(asyncio.WriteTransport, transport)

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        self._deliver()

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self._deliver()

    def _deliver(self) -> None:
        waiter, buffer = self._waiter, self._buffer
        if waiter is None or waiter.done():
            return
        if len(buffer) >= RESPONSE.size:
            status, flags, size = RESPONSE.unpack_from(buffer)
            if size > self._limits.max_reply_bytes:
                waiter.set_exception(
                    SandboxError(f"sandbox worker sent an oversized reply ({size} bytes)")
                )
                return
            end = RESPONSE.size + size
            if len(buffer) >= end:
                payload = bytes(buffer[RESPONSE.size : end])
                del buffer[:end]
                waiter.set_result(Reply(status, flags, payload))
                return
        if self.lost:
            waiter.set_exception(ConnectionError("sandbox worker closed the connection"))

    async def next_reply(self) -> Reply:
        self._waiter = asyncio.get_running_loop().create_future()
        self._deliver()
        return await self._waiter


class AsyncWorker:
    """One worker process driven from the event loop."""

    def __init__(
        self,
        process: asyncio.subprocess.Process,
        reader: _ReplyReader,
        stderr: IO[bytes] | None = None,
    ) -> None:
        self.process = process
        self._reader = reader
        self._stderr = stderr
        assert reader.transport is not None
        self._transport = reader.transport
        # Bookkeeping for recycling (the pool decides; see ``pool.Recycling``).
        self.evaluations = 0
        self.recycle_at = 0
        self.replacing = False
        self.retired = False
        self.idle_since = 0.0  # loop time it last went back to the pool

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def alive(self) -> bool:
        """Running and still in service (a retired worker is never handed out again)."""
        return not self.retired and not self._reader.lost and self.process.returncode is None

    def rss_mb(self) -> int | None:
        """Resident memory in MB, from /proc (None where there is no /proc, or it is gone)."""
        try:
            with open(f"/proc/{self.process.pid}/statm", "rb") as statm:
                pages = int(statm.read().split()[1])
        except (OSError, IndexError, ValueError):
            return None
        return (pages * _PAGE_SIZE) >> 20

    @classmethod
    async def spawn(cls, limits: Limits) -> AsyncWorker:
        """Start a worker and wait for its "ready"; a failure names the worker's reason."""
        parent, child = socket.socketpair()
        stderr = _stderr()
        try:
            process = await asyncio.create_subprocess_exec(
                *limits.argv(child.fileno()),
                pass_fds=(child.fileno(),),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
            )
        except BaseException:
            parent.close()
            if stderr is not None:
                stderr.close()
            raise
        finally:
            child.close()
        loop = asyncio.get_running_loop()
        _, reader = await loop.create_unix_connection(lambda: _ReplyReader(limits), sock=parent)
        worker = cls(process, reader, stderr)
        try:
            async with asyncio.timeout(_SPAWN_TIMEOUT):
                await worker._reader.next_reply()  # the "ready" answer
        except ConnectionError as exc:
            await worker._reap()
            error = _start_error(process.returncode, _reason(stderr))
            await worker.kill()
            raise error from exc
        except TimeoutError as exc:
            await worker.kill()
            raise SandboxError(
                f"the sandbox worker failed to start (no answer within {_SPAWN_TIMEOUT:g} s)"
            ) from exc
        except BaseException:
            await worker.kill()
            raise
        return worker

    async def read_reply(self) -> Reply:
        try:
            return await self._reader.next_reply()
        except ConnectionError as exc:
            await self._reap()
            raise _death_error(self.process.returncode, _reason(self._stderr)) from exc

    async def call(self, request: bytes) -> Reply:
        # One request in flight per worker, so the transport's buffer is all the flow
        # control needed; the worker reads every byte before it answers.
        self.evaluations += 1
        self._transport.write(request)
        return await self.read_reply()

    async def _reap(self) -> None:
        # A dead worker's exit status says why it died; give it a moment to be collected.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.process.wait(), 1.0)

    async def kill(self) -> None:
        self._transport.close()
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
        await self.process.wait()
        self._close_stderr()

    async def close(self) -> None:
        """Ask politely (end of input), then insist."""
        self._transport.close()
        try:
            await asyncio.wait_for(self.process.wait(), 2.0)
        except TimeoutError:
            await self.kill()
        self._close_stderr()

    def _close_stderr(self) -> None:
        if self._stderr is not None:
            self._stderr.close()
