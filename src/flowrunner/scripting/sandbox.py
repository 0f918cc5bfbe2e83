"""The JavaScript sandbox: what the rest of Flowrunner calls to run user code.

    async with Sandbox(workers=2, timeout=1.0, memory_mb=64, idle_seconds=300) as sandbox:
        total = await sandbox.evaluate_expression("input.a + input.b", {"input": {...}})
        result = await sandbox.run_function("shared.n = 1; return input * 2", scope)

Every call runs in a warm V8 isolate inside a worker process (see ``worker.py`` for why not
in this process), with a wall-time limit, a heap limit and a result-size limit, and sees only
the data in ``scope`` plus the helpers in ``helpers.js``. Errors come back as the sandbox
family of :mod:`flowrunner.errors`: ``ScriptError`` (with the line and column inside the
script), ``ScriptTimeout`` and ``ScriptResourceError``.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal, Self

from flowrunner.errors import SandboxError, ScriptError
from flowrunner.fairness import ACCOUNT_ID, FairSemaphore
from flowrunner.scripting.checker import SyntaxChecker
from flowrunner.scripting.codec import (
    decode_reply,
    encode_joined,
    encode_request,
    encode_scope,
    scope_names,
    script_error,
)
from flowrunner.scripting.host import JoinedResult, LogLine, ScriptResult, SyntaxKind
from flowrunner.scripting.pool import Recycling, WorkerPool
from flowrunner.scripting.process import Limits
from flowrunner.scripting.worker import (
    KIND_EXPRESSION,
    KIND_FUNCTION,
    KIND_JOINED,
    KIND_MANY,
    OP_CHECK,
    OP_RUN,
    OP_STATS,
)

# A syntax check only parses; it gets a generous fixed limit rather than the script's.
_CHECK_TIMEOUT = 5.0
# How long an evaluation may wait for its turn at a worker before it fails.
_QUEUE_TIMEOUT = 30.0


@dataclass(frozen=True, slots=True)
class SandboxHealth:
    """``not_started``: no script has run yet (the first one starts a worker); ``ready``:
    started, with ``workers_alive`` live (0 after idle ones were closed: the next script
    starts one); ``failed``: a worker could not start (``reason``), the last time one was
    needed; ``closed``: shut down."""

    status: Literal["not_started", "ready", "failed", "closed"]
    workers_alive: int
    reason: str | None = None


class Sandbox:
    """The ``ScriptHost``: owns the worker pool; use as ``async with`` or call
    ``start``/``close``."""

    def __init__(
        self,
        *,
        workers: int = 2,
        per_account: int | None = None,
        timeout: float = 1.0,
        memory_mb: int = 64,
        max_result_bytes: int = 8_000_000,
        recycle_after: int = 100_000,
        recycle_rss_mb: int = 384,
        idle_seconds: float = 0.0,
    ) -> None:
        if timeout <= 0 or memory_mb < 8 or max_result_bytes < 1:
            raise ValueError("timeout, memory_mb and max_result_bytes must be positive")
        self.timeout = timeout
        self.limits = Limits(heap_mb=memory_mb, max_result_bytes=max_result_bytes)
        recycling = Recycling(max_evaluations=recycle_after, max_rss_mb=recycle_rss_mb)
        self._pool = WorkerPool(workers, self.limits, recycling, idle_seconds=idle_seconds)
        self._checker = SyntaxChecker(self.limits, idle_seconds=idle_seconds)
        self._started = False
        self._start_error: str | None = None
        self._closed = False
        self._start_lock = asyncio.Lock()
        # Turns at the workers, per account (``fairness.ACCOUNT_ID``, set by the runner): one
        # account's endless scripts hold at most ``per_account`` workers, and a waiting
        # account is served before one that already holds more.
        self._turns = FairSemaphore(workers, per_key=per_account)
        # Told each evaluation's time at a worker, in seconds (the server's metrics).
        self.observe: Callable[[float], None] | None = None

    async def start(self) -> None:
        async with self._start_lock:
            if not self._started:
                try:
                    await self._pool.start()
                except SandboxError as exc:
                    self._start_error = str(exc)
                    raise
                self._started, self._start_error = True, None

    def health(self) -> SandboxHealth:
        """How the pool is doing, read without starting a worker (readiness probes)."""
        alive = self._pool.alive
        if self._closed:
            return SandboxHealth("closed", alive)
        if not self._started:
            if self._start_error is not None:
                return SandboxHealth("failed", alive, self._start_error)
            return SandboxHealth("not_started", alive)
        failure = self._pool.spawn_error
        if alive == 0 and failure is not None:
            return SandboxHealth("failed", alive, str(failure) or type(failure).__name__)
        return SandboxHealth("ready", alive)

    async def close(self) -> None:
        self._closed = True
        await self._pool.close()
        await asyncio.to_thread(self._checker.close)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def worker_pids(self) -> list[int]:
        return self._pool.pids

    @property
    def workers_alive(self) -> int:
        return self._pool.alive

    @property
    def workers_killed(self) -> int:
        """Workers killed so far for a timeout, a crash or a limit they hit (then replaced
        when needed)."""
        return self._pool.killed

    @property
    def shrunk(self) -> int:
        """How many workers were closed for being idle ``idle_seconds`` so far."""
        return self._pool.shrunk

    @property
    def recycled(self) -> int:
        """How many healthy workers were replaced by recycling so far."""
        return self._pool.recycled

    async def worker_stats(self) -> dict[str, int]:
        """Heap statistics of the worker the next evaluation would get: ``heap_used``,
        ``heap_total``, ``heap_limit`` (bytes), ``compiled`` (snippets it holds compiled),
        ``evaluations`` and ``collections`` (full GCs it asked for between evaluations)."""
        if not self._started:
            await self.start()
        request = encode_request(OP_STATS, KIND_EXPRESSION, "", "")
        body = decode_reply(await self._pool.call(request, _CHECK_TIMEOUT))
        return {str(k): int(v) for k, v in body["v"].items()}

    async def evaluate_expression(
        self,
        code: str,
        scope: Mapping[str, Any],
        *,
        timeout: float | None = None,  # noqa: ASYNC109 - named by the sandbox API contract
    ) -> Any:
        """The value of one JavaScript expression with ``scope``'s keys as variables."""
        body = await self._run(KIND_EXPRESSION, code, scope, timeout)
        return body.get("v")

    async def evaluate_expressions(
        self,
        codes: Sequence[str],
        scope: Mapping[str, Any],
        *,
        timeout: float | None = None,  # noqa: ASYNC109 - named by the sandbox API contract
    ) -> list[Any]:
        """The values of several expressions over one scope, in one round trip to a worker.

        Each expression sees its own freshly parsed copy of ``scope``, exactly as if it were
        evaluated alone; one that throws gives its ``ScriptError`` in its place in the list
        (not raised), so the caller decides which failure counts. The time limit is the
        per-expression limit times the number of expressions.
        """
        if len(codes) < 2:
            return [await self._one(code, scope, timeout) for code in codes]
        limit = (self.timeout if timeout is None else timeout) * len(codes)
        try:
            code = json.dumps(list(codes), ensure_ascii=False)
            body = await self._run(KIND_MANY, code, scope, limit)
        except ScriptError:
            # Only compiling can fail the whole batch (run-time errors are per expression):
            # one at a time, each syntax error comes back with its own line and column.
            return [await self._one(code, scope, timeout) for code in codes]
        return [script_error(item["e"], []) if "e" in item else item.get("v") for item in body["v"]]

    async def _one(self, code: str, scope: Mapping[str, Any], seconds: float | None) -> Any:
        try:
            return await self.evaluate_expression(code, scope, timeout=seconds)
        except ScriptError as exc:
            return exc

    async def run_function(
        self,
        body: str,
        scope: Mapping[str, Any],
        *,
        timeout: float | None = None,  # noqa: ASYNC109 - named by the sandbox API contract
    ) -> ScriptResult:
        """Run a function body; ``return`` gives ``value``, ``shared`` comes back changed."""
        reply = await self._run(KIND_FUNCTION, body, scope, timeout)
        logs = [LogLine(level, message) for level, message in reply.get("l", ())]
        # A body that never names `shared` did not get it (see `_run`): it is unchanged.
        shared = reply["s"] if "s" in reply else scope.get("shared")
        return ScriptResult(value=reply.get("v"), shared=shared, logs=logs)

    async def evaluate_then_run(
        self,
        codes: Sequence[str],
        scope: Mapping[str, Any],
        body: str,
        params: Any,
        slots: Sequence[tuple[Sequence[str | int], int]],
        *,
        timeout: float | None = None,  # noqa: ASYNC109 - named by the sandbox API contract
    ) -> JoinedResult:
        """A node's expressions and then its prep hook, in one round trip to a worker.

        The expressions are evaluated exactly as by ``evaluate_expressions``; if none failed,
        the hook runs exactly as ``run_function(body, {**scope, "params": p})`` would, ``p``
        being ``params`` with each expression's value (as it would have come back) at its
        ``slots`` paths. The time limit is the per-expression limit times the number of
        expressions, plus the hook's. Raises only when the call fails as a whole; a caller
        that needs each part's own error then makes the two calls (see ``JoiningHost``).
        """
        listing = json.dumps(list(codes), ensure_ascii=False)
        for_expressions = _used(listing, scope)
        # The hook's scope is ``scope`` with ``params`` (added if ``scope`` has none).
        for_hook = _used(body, scope if "params" in scope else {**scope, "params": None})
        if "params" not in for_hook:  # a hook that never names `params` does not get them
            params, slots = None, ()
        # The hook's `params` is the resolved params (sent as the template), not the raw ones.
        sent = tuple(k for k in scope if k in for_expressions or (k in for_hook and k != "params"))
        spec = {"x": list(codes), "h": body, "n": scope_names(for_hook)}
        payload = encode_joined({k: scope[k] for k in sent}, params, slots)
        limit = (self.timeout if timeout is None else timeout) * (len(codes) + 1)
        reply = await self._call(
            KIND_JOINED, scope_names(sent), json.dumps(spec, ensure_ascii=False), payload, limit
        )
        values = [
            script_error(item["e"], []) if "e" in item else item.get("v") for item in reply["v"]
        ]
        done = reply.get("h")
        hook: ScriptResult | Exception | None = None
        if done is not None and "e" in done:
            hook = script_error(done["e"], reply.get("l") or [])
        elif done is not None:
            logs = [LogLine(level, message) for level, message in reply.get("l", ())]
            shared = done["s"] if "s" in done else scope.get("shared")
            hook = ScriptResult(value=done.get("v"), shared=shared, logs=logs)
        return JoinedResult(values, hook)

    def check_syntax(self, code: str, *, kind: SyntaxKind) -> None:
        """Raise ``ScriptError`` (with line and column) if ``code`` does not parse.

        Synchronous for validators; it uses a dedicated worker started on first use (see
        ``checker``), so it blocks for the hop (well under a millisecond) or, once, for the
        worker to start.
        """
        if self._closed:
            raise SandboxError("the sandbox is closed")
        wire_kind = KIND_EXPRESSION if kind == "expression" else KIND_FUNCTION
        decode_reply(
            self._checker.call(encode_request(OP_CHECK, wire_kind, "", code), _CHECK_TIMEOUT)
        )

    async def _run(
        self, kind: bytes, code: str, scope: Mapping[str, Any], seconds: float | None
    ) -> dict[str, Any]:
        used = _used(code, scope)
        payload = encode_scope({k: scope[k] for k in used})
        return await self._call(kind, scope_names(used), code, payload, seconds)

    async def _call(
        self, kind: bytes, names: str, code: str, payload: bytes, seconds: float | None
    ) -> dict[str, Any]:
        if not self._started:
            await self.start()
        request = encode_request(OP_RUN, kind, names, code, payload)
        limit = self.timeout if seconds is None else seconds
        if limit <= 0:
            raise ValueError("timeout must be positive")
        account = ACCOUNT_ID.get()
        if not self._turns.try_acquire(account):  # the common case needs no timer
            try:
                async with asyncio.timeout(_QUEUE_TIMEOUT):
                    await self._turns.acquire(account)
            except TimeoutError:
                raise SandboxError(
                    f"no sandbox worker became free within {_QUEUE_TIMEOUT:g} s"
                ) from None
        started = time.perf_counter()
        try:
            reply = await self._pool.call(request, limit)
        finally:
            self._turns.release(account)
            if self.observe is not None:
                self.observe(time.perf_counter() - started)
        return decode_reply(reply)


def _used(code: str, scope: Mapping[str, Any]) -> tuple[str, ...]:
    """The scope keys ``code`` can use. Locals can only be referenced by name in the source
    (there is no eval or `with`), so a scope entry whose name is not in the code text cannot
    be used: it is not serialised. Unicode escapes in identifiers (\\u0069nput) defeat the
    text check."""
    return tuple(scope) if "\\u" in code else tuple(k for k in scope if k in code)
