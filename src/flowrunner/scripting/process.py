"""One sandbox worker process, driven from the event loop or with blocking calls.

``AsyncWorker`` serves the pool (one request in flight, replies read by a protocol on the
loop); ``SyncWorker`` serves synchronous callers (syntax checks during validation). Both
translate a dead worker into ``ScriptResourceError`` with how it died.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass
from typing import cast

from flowrunner.errors import SandboxError, ScriptResourceError, ScriptTimeout
from flowrunner.scripting import worker as worker_module
from flowrunner.scripting.codec import Reply
from flowrunner.scripting.worker import EXITING, RESPONSE

# Baseline writable memory of a worker with V8 started is ~560 MB of mostly untouched
# reservations; the OS cap sits above that plus a multiple of the JS heap limit.
_DATA_BASE_MB = 640
_SPAWN_TIMEOUT = 20.0


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


def _stderr() -> int | None:
    # V8 prints fatal errors to stderr; keep them out of the server's output unless debugging.
    return None if os.environ.get("FLOWRUNNER_SANDBOX_DEBUG") else subprocess.DEVNULL


def _death_error(returncode: int | None) -> ScriptResourceError:
    if returncode is not None and returncode < 0:
        how = f"killed by {signal.Signals(-returncode).name}"
    else:
        how = f"exit status {returncode}" if returncode is not None else "connection lost"
    return ScriptResourceError(
        f"the script's sandbox worker died ({how}); it probably exceeded a memory limit"
    )


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

    def __init__(self, process: asyncio.subprocess.Process, reader: _ReplyReader) -> None:
        self.process = process
        self._reader = reader
        assert reader.transport is not None
        self._transport = reader.transport

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def alive(self) -> bool:
        return not self._reader.lost and self.process.returncode is None

    @classmethod
    async def spawn(cls, limits: Limits) -> AsyncWorker:
        parent, child = socket.socketpair()
        try:
            process = await asyncio.create_subprocess_exec(
                *limits.argv(child.fileno()),
                pass_fds=(child.fileno(),),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=_stderr(),
            )
        finally:
            child.close()
        loop = asyncio.get_running_loop()
        _, reader = await loop.create_unix_connection(lambda: _ReplyReader(limits), sock=parent)
        worker = cls(process, reader)
        try:
            async with asyncio.timeout(_SPAWN_TIMEOUT):
                await worker.read_reply()  # the "ready" answer
        except BaseException:
            await worker.kill()
            raise
        return worker

    async def read_reply(self) -> Reply:
        try:
            return await self._reader.next_reply()
        except ConnectionError as exc:
            await self._reap()
            raise _death_error(self.process.returncode) from exc

    async def call(self, request: bytes) -> Reply:
        # One request in flight per worker, so the transport's buffer is all the flow
        # control needed; the worker reads every byte before it answers.
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

    async def close(self) -> None:
        """Ask politely (end of input), then insist."""
        self._transport.close()
        try:
            await asyncio.wait_for(self.process.wait(), 2.0)
        except TimeoutError:
            await self.kill()


class SyncWorker:
    """One worker driven with blocking calls, for synchronous callers (syntax checks)."""

    def __init__(self, limits: Limits) -> None:
        self._limits = limits
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._sock: socket.socket | None = None

    @property
    def pid(self) -> int | None:
        """The worker's process id, None until the first call starts it."""
        return self._process.pid if self._process is not None else None

    def _start(self) -> socket.socket:
        parent, child = socket.socketpair()
        try:
            self._process = subprocess.Popen(
                self._limits.argv(child.fileno()),
                pass_fds=(child.fileno(),),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=_stderr(),
            )
        finally:
            child.close()
        self._sock = parent
        parent.settimeout(_SPAWN_TIMEOUT)
        self._read()
        return parent

    def _read_exact(self, n: int) -> bytes:
        assert self._sock is not None
        chunks, got = [], 0
        while got < n:
            chunk = self._sock.recv(n - got)
            if not chunk:
                raise ConnectionError("sandbox worker closed the connection")
            chunks.append(chunk)
            got += len(chunk)
        return b"".join(chunks)

    def _read(self) -> Reply:
        status, flags, size = RESPONSE.unpack(self._read_exact(RESPONSE.size))
        if size > self._limits.max_reply_bytes:
            raise SandboxError(f"sandbox worker sent an oversized reply ({size} bytes)")
        return Reply(status, flags, self._read_exact(size) if size else b"")

    def call(self, request: bytes, timeout: float) -> Reply:
        with self._lock:
            if self._process is not None and self._process.poll() is not None:
                self._stop()  # died while idle (or with the thread that started it)
            try:
                sock = self._sock or self._start()
                sock.settimeout(timeout)
                sock.sendall(request)
                reply = self._read()
            except TimeoutError:
                self._stop()
                raise ScriptTimeout(f"script timed out after {round(timeout * 1000)} ms") from None
            except (OSError, ConnectionError) as exc:
                returncode = self._stop()
                raise _death_error(returncode) from exc
            if reply.flags & EXITING:
                self._stop()
            return reply

    def _stop(self) -> int | None:
        process, sock = self._process, self._sock
        self._process = self._sock = None
        if sock is not None:
            sock.close()
        if process is None:
            return None
        if process.poll() is None:
            process.kill()
        return process.wait()

    def close(self) -> None:
        with self._lock:
            self._stop()
