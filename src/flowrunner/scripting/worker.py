"""The sandbox worker process: one V8 isolate, serving evaluations over a socket.

Started by :mod:`flowrunner.scripting.pool` as ``python -I worker.py <fd> <heap MB> <result
bytes> <data MB>``. It runs as a plain script so it imports neither the ``flowrunner``
package nor anything but the standard library and mini-racer; the parent imports it only for
the frame formats below.

Why a separate process: V8's limits in mini-racer are not airtight (off-heap memory is not
counted, an OOM without a limit aborts the process, a broken context stays broken), so the
server never hosts V8. Here the OS caps the data segment, and whenever the isolate may be in
a bad state (heap limit hit, unexpected engine error) the worker answers and then exits; the
parent starts a fresh one. Wall-time limits are enforced by the parent, which kills the
worker: termination from outside is the one interrupt that always works.

Wire format (both directions length-prefixed, little-endian):

* request: ``REQUEST`` header (op, kind, len(names), len(code), len(scope)) then the three
  UTF-8 strings. op ``R`` runs ``code`` with the JSON ``scope``; op ``C`` only compiles it;
  op ``S`` asks for the worker's heap statistics (a ``V`` reply whose ``v`` holds them).
  kind ``e`` is an expression, ``f`` a function body, ``m`` a JSON array of expressions
  evaluated in one request (the value is a list of ``{"v": value}`` or ``{"e": error}``,
  one per expression), ``p`` a node's expressions and then its prep hook in one request
  (``code`` is ``{"x": [expressions], "h": hook body, "n": the hook's names}``, ``scope``
  is the scope JSON, a newline, and ``[params template, [[path, index], ...]]``; the reply
  is ``{"l": the hook's logs, "v": [items as for m], "h": null | {"v", "s"} | {"e"}}``, see
  runtime.js ``runJoined``). ``names`` is the comma-joined scope
  keys (validated identifiers) that become locals.
* response: ``RESPONSE`` header (status, flags, len(payload)) then a UTF-8 JSON payload.
  status ``V`` ok (``{"l": logs, "v": value, "s": shared}``), ``E`` script error
  (``{"e": {"name", "message", "line", "column"}, "l": logs}``), ``R`` resource limit
  (``{"m": message}``), ``K`` ok without payload. flags bit ``EXITING``: the worker is
  quitting after this answer and must be replaced.
"""

from __future__ import annotations

import json
import os
import re
import resource
import signal
import socket
import struct
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

REQUEST = struct.Struct("<ccIII")
RESPONSE = struct.Struct("<cBI")
EXITING = 1
OP_RUN, OP_CHECK, OP_STATS = b"R", b"C", b"S"
KIND_EXPRESSION, KIND_FUNCTION, KIND_MANY, KIND_JOINED = b"e", b"f", b"m", b"p"
STATUS_VALUE, STATUS_ERROR, STATUS_RESOURCE, STATUS_OK = b"V", b"E", b"R", b"K"

# How many compiled snippets a worker keeps; beyond that the cache is dropped and rebuilt.
COMPILED_CACHE_SIZE = 512
# Every this many evaluations the worker looks at its heap, between evaluations; above half
# the limit it asks V8 for a full collection. V8 sizes its own old-generation budget for a
# far larger heap than our limit, so garbage could otherwise reach the limit first and fail
# an innocent evaluation.
HEAP_CHECK_EVERY = 1000
# User code starts on this line of the source V8 compiles (see runtime.js, `source`).
LINE_OFFSET = 3
_SYNTAX = re.compile(r"undefined:(\d+): (\w+): ([^\n]*)\n([^\n]*)\n( *)\^")
_ANY_ERROR = re.compile(r"[^:\n]*:\d+: (\w+): ([^\n]*)")

HERE = Path(__file__).resolve().parent


def parse_syntax_error(text: str, code: str) -> dict[str, Any]:
    """Turn mini-racer's message for an uncaught compile error into name/message/line/column."""
    match = _SYNTAX.match(text)
    if match is None:
        # No position (a parser stack overflow, say): keep V8's own name and message.
        other = _ANY_ERROR.match(text)
        if other is not None:
            return {"name": other[1], "message": other[2], "line": None, "column": None}
        first = text.strip().splitlines()[0] if text.strip() else "SyntaxError"
        return {"name": "SyntaxError", "message": first, "line": None, "column": None}
    line = int(match[1]) - LINE_OFFSET
    column = len(match[5]) + 1
    lines = code.split("\n")
    # "Unexpected end of input" points past the user's last line, at our closing wrapper.
    if line > len(lines):
        line, column = len(lines), len(lines[-1]) + 1
    return {"name": match[2], "message": match[3], "line": max(line, 1), "column": column}


class _Server:
    """The request loop; owns the isolate and the compiled-snippet cache."""

    def __init__(
        self, sock: socket.socket, mr: Any, token: str, max_result: int, heap_mb: int
    ) -> None:
        self.sock = sock
        self.mr = mr
        self.rt = f"__fr_{token}"
        self.max_result = max_result
        self.collect_above = (heap_mb << 20) // 2
        self.ids: dict[tuple[bytes, str, str], int] = {}
        # Evaluations go through this object's accessors: no source is compiled per call.
        self.door = mr.eval(f"{self.rt}.door")
        self.next_id = 0
        self.evaluations = 0
        self.collections = 0
        from py_mini_racer import JSEvalException, JSOOMException

        self.eval_error: type[Exception] = JSEvalException
        self.oom_error: type[Exception] = JSOOMException

    def recv_exact(self, n: int) -> bytes:
        buf = bytearray(n)
        view = memoryview(buf)
        got = 0
        while got < n:
            k = self.sock.recv_into(view[got:])
            if k == 0:
                raise EOFError
            got += k
        return bytes(buf)

    def send(self, status: bytes, payload: bytes = b"", flags: int = 0) -> None:
        self.sock.sendall(RESPONSE.pack(status, flags, len(payload)) + payload)

    def send_json(self, status: bytes, obj: Any, flags: int = 0) -> None:
        self.send(status, json.dumps(obj).encode(), flags)

    def serve(self) -> None:
        self.send(STATUS_OK)  # ready
        while True:
            try:
                op, kind, n_names, n_code, n_scope = REQUEST.unpack(self.recv_exact(REQUEST.size))
                body = self.recv_exact(n_names + n_code + n_scope)
            except EOFError:
                return
            names = body[:n_names].decode()
            code = body[n_names : n_names + n_code].decode()
            if op == OP_CHECK:
                # A check compiles new source each time (the syntax checker's only job), so
                # it counts toward the backstop collection like an evaluation.
                self.check(kind, code)
                self.collect_if_needed()
            elif op == OP_STATS:
                self.send_json(STATUS_VALUE, {"l": [], "v": self.stats()})
            else:
                scope = body[n_names + n_code :].decode()
                if not self.run(kind, names, code, scope):
                    return
                self.collect_if_needed()  # after the answer, so no caller waits for it

    def guarded(self, call: Callable[[], Any]) -> tuple[Any, bool]:
        """Make our own call into the runtime; on an engine failure answer and say stop."""
        try:
            return call(), True
        except self.oom_error:
            message = "the script exceeded its memory limit"
        except self.eval_error as exc:
            message = f"the script engine failed: {str(exc).strip().splitlines()[0]}"
        self.send_json(STATUS_RESOURCE, {"m": message}, EXITING)
        return None, False

    def stats(self) -> dict[str, int]:
        heap = self.mr.heap_stats()
        compiled = json.loads(self.door["stats"])["compiled"]
        return {
            "heap_used": int(heap["used_heap_size"]),
            "heap_total": int(heap["total_heap_size"]),
            "heap_limit": self.collect_above * 2,
            "compiled": int(compiled),
            "evaluations": self.evaluations,
            "collections": self.collections,
        }

    def collect_if_needed(self) -> None:
        """Between evaluations: a full collection once the heap is half full."""
        self.evaluations += 1
        if self.evaluations % HEAP_CHECK_EVERY != 0:
            return
        if self.mr.heap_stats()["used_heap_size"] > self.collect_above:
            self.mr.low_memory_notification()
            self.collections += 1

    def check(self, kind: bytes, code: str) -> None:
        try:
            self.mr.eval(f"{self.rt}.check({json.dumps(kind.decode())},{json.dumps(code)})")
        except self.eval_error as exc:
            self.send_json(STATUS_ERROR, {"e": parse_syntax_error(str(exc), code), "l": []})
            return
        self.send(STATUS_OK)

    def run(self, kind: bytes, names: str, code: str, scope: str) -> bool:
        key = (kind, names, code)
        fid = self.ids.get(key)
        if fid is None:
            if len(self.ids) >= COMPILED_CACHE_SIZE:
                self.mr.eval(f"{self.rt}.forget()")
                self.ids.clear()
            fid = self.next_id = self.next_id + 1
            args = f"{fid},{json.dumps(kind.decode())},{json.dumps(names)},{json.dumps(code)}"
            try:
                self.mr.eval(f"{self.rt}.define({args})")
            except self.oom_error:
                self.send_json(
                    STATUS_RESOURCE, {"m": "compiling the script ran out of memory"}, EXITING
                )
                return False
            except self.eval_error as exc:
                self.send_json(STATUS_ERROR, {"e": parse_syntax_error(str(exc), code), "l": []})
                return True
            self.ids[key] = fid
        packed = f"{fid}:{os.urandom(32).hex()}:{scope}"
        _, ok = self.guarded(lambda: self.door.__setitem__("run", packed))
        # A second V8 task: mini-racer drains the microtask queue after each task, so by
        # now promises have settled and a microtask loop has blocked us (-> parent timeout).
        out, ok = self.guarded(lambda: self.door["settle"]) if ok else (None, False)
        if not ok:
            return False
        data = str(out).encode()
        if len(data) - 1 > self.max_result:
            message = f"the result is {len(data) - 1} bytes, over the limit of {self.max_result}"
            self.send_json(STATUS_RESOURCE, {"m": message})
            return True
        self.send(data[:1], data[1:])
        return True


def _bootstrap(mr: Any, token: str, max_result: int) -> None:
    runtime = (HERE / "runtime.js").read_text()
    helpers = (HERE / "helpers.js").read_text()
    limits = {
        "maxResultChars": max_result,
        "maxLogLines": 1000,
        "maxLogChars": 1_000_000,
    }
    mr.eval(f"const __fr_{token} = ({runtime})(({helpers}), {json.dumps(limits)});")


def _die_with_parent() -> None:
    """Exit when the server dies, even mid-script: EOF on the socket is only seen between
    requests, and an orphan spinning in an endless loop would never see it."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG (Linux)
    except (OSError, AttributeError):
        pass
    if os.getppid() == 1:  # the parent is already gone
        sys.exit(0)


def main(argv: list[str]) -> None:
    fd, heap_mb, max_result, data_mb = (int(a) for a in argv[1:5])
    _die_with_parent()
    # The OS cap catches what V8's own accounting misses (RLIMIT_AS would stop V8 from
    # reserving its address space; the data segment counts only what is really writable).
    resource.setrlimit(resource.RLIMIT_DATA, (data_mb << 20, data_mb << 20))
    sock = socket.socket(fileno=fd)

    import asyncio

    from py_mini_racer import mini_racer

    async def serve() -> None:
        # Owning mini-racer's event loop lets eval() take its direct, blocking path
        # (one hop to the V8 thread) instead of a cross-thread coroutine per call.
        loop = asyncio.get_running_loop()
        with mini_racer(loop) as mr:
            mr.set_hard_memory_limit(heap_mb << 20)
            token = os.urandom(16).hex()
            _bootstrap(mr, token, max_result)
            _Server(sock, mr, token, max_result, heap_mb).serve()

    run: Callable[[Any], None] = asyncio.run
    run(serve())


if __name__ == "__main__":
    main(sys.argv)
