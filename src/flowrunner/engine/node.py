"""``Node``: prep → exec → post, with retries, a timeout, batching and sync/async hooks.

A node is a definition. Everything a run changes lives in the run's ``Context`` or in local
variables, so one node object can take part in many concurrent runs.

Each hook may be ``def`` or ``async def``. Which one is decided once per class (in
``__init_subclass__``) and turned into a per-instance call mode in ``__init__``, so the hot
path is an integer comparison, never an ``inspect`` call.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Mapping
from types import MappingProxyType
from typing import Any, ClassVar

from flowrunner.engine.batch import Unbatched, run_batch
from flowrunner.engine.context import Context
from flowrunner.engine.events import NodeEvent
from flowrunner.engine.policies import NO_RETRY, BatchPolicy, RetryPolicy
from flowrunner.errors import NodeTimeout

__all__ = ["Node"]

_NO_BRANCHES: Mapping[str, Node] = MappingProxyType({})

# How a hook is called: inline on the loop, awaited, or in a worker thread.
SYNC, ASYNC, THREAD = 0, 1, 2

_HOOKS = ("prep", "exec", "exec_fallback", "post")


class Node:
    """One step of a flow. Override ``prep``, ``exec``, ``exec_fallback`` and ``post``.

    ``prep(ctx)`` gathers what ``exec`` needs (default: ``ctx.input``); ``exec(prep_res)`` does
    the work and is the only hook retried and timed out; ``exec_fallback(prep_res, exc)`` runs
    after the last failed attempt (default: re-raise); ``post(ctx, prep_res, exec_res)``
    returns the action that picks the next node (``None`` means ``"default"``). The node's
    output is ``exec_res``: it becomes the next node's ``ctx.input`` and
    ``ctx.results[node_id]``.
    """

    __slots__ = (
        "_batch",
        "_blocking",
        "_exec_mode",
        "_fallback_mode",
        "_plain",
        "_post_mode",
        "_prep_mode",
        "_retry",
        "_successors",
        "_timeout",
        "node_id",
    )

    # Names of the hooks this class defines with ``async def``; set per class, once.
    _async_hooks: ClassVar[frozenset[str]] = frozenset()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._async_hooks = frozenset(
            name for name in _HOOKS if inspect.iscoroutinefunction(getattr(cls, name))
        )

    def __init__(
        self,
        *,
        node_id: str | None = None,
        retry: RetryPolicy = NO_RETRY,
        batch: BatchPolicy | None = None,
        timeout: float | None = None,
        blocking: bool = False,
    ) -> None:
        if timeout is not None and timeout <= 0:
            raise ValueError(f"timeout must be > 0 seconds, got {timeout}")
        self.node_id: str = node_id or type(self).__name__
        self._retry = retry
        self._batch = batch
        self._timeout = timeout
        self._blocking = blocking
        self._successors: dict[str, Node] = {}
        cls = type(self)
        self._prep_mode = self._mode(cls, "prep")
        self._exec_mode = self._mode(cls, "exec")
        self._fallback_mode = self._mode(cls, "exec_fallback")
        self._post_mode = self._mode(cls, "post")
        if timeout is not None and self._exec_mode == SYNC:
            # A sync exec running on the loop cannot be interrupted; in a thread the await
            # on it can time out (the thread itself finishes in the background).
            self._exec_mode = THREAD
        # No retry and no timeout: exec is called directly, without the retry loop.
        self._plain = retry.max_retries == 0 and timeout is None

    def _mode(self, cls: type[Node], name: str) -> int:
        if name in cls._async_hooks:
            return ASYNC
        if self._blocking and getattr(cls, name) is not getattr(Node, name):
            return THREAD
        return SYNC  # the built-in defaults are trivial: a thread hop would only cost

    # The policies are read-only: the call modes above are derived from them once.

    @property
    def retry(self) -> RetryPolicy:
        return self._retry

    @property
    def batch(self) -> BatchPolicy | None:
        return self._batch

    @property
    def timeout(self) -> float | None:
        """Seconds each exec attempt may take (a nested Flow: the whole sub-flow)."""
        return self._timeout

    @property
    def blocking(self) -> bool:
        """Whether sync hooks run in a worker thread."""
        return self._blocking

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.node_id!r}>"

    # --- hooks to override ----------------------------------------------------------------

    def prep(self, ctx: Context) -> Any:
        return ctx.input

    def exec(self, prep_res: Any) -> Any:
        return None

    def exec_fallback(self, prep_res: Any, exc: BaseException) -> Any:
        raise exc

    async def pause(self, seconds: float) -> None:
        """Wait ``seconds`` before the next attempt. Override to use the wait: a server lets
        the run's executor slot go meanwhile."""
        await asyncio.sleep(seconds)

    # The Awaitable in the return type lets an `async def post` override type-check.
    def post(
        self, ctx: Context, prep_res: Any, exec_res: Any
    ) -> str | Awaitable[str | None] | None:
        return None

    # --- wiring ---------------------------------------------------------------------------

    @property
    def branches(self) -> Mapping[str, Node]:
        """Branches this node runs itself with ``run_branches`` (a fan-out); none by default.
        Listed so that ``Flow.nodes`` finds the nodes inside them."""
        return _NO_BRANCHES

    @property
    def successors(self) -> Mapping[str, Node]:
        """The next node for each action (read-only: wire with ``connect`` or ``>>``)."""
        return MappingProxyType(self._successors)

    def connect(self, target: Node, action: str = "default") -> Node:
        """Follow ``action`` to ``target``; returns ``target`` so chains read left to right."""
        if not isinstance(action, str) or not action:
            raise ValueError(f"an action must be a non-empty string, got {action!r}")
        current = self._successors.get(action)
        if current is not None and current is not target:
            raise ValueError(
                f"node {self.node_id!r} already follows {action!r} to {current.node_id!r}"
            )
        self._successors[action] = target
        return target

    def end(self, action: str = "default") -> None:
        """Make ``action`` end the flow at this node, even when the node has a ``default``
        edge (an unwired action would follow it); ``end("error")`` ends the flow when the node
        fails, instead of failing the run."""
        self.connect(FLOW_END, action)

    def __rshift__(self, target: Node) -> Node:
        return self.connect(target)

    def __sub__(self, action: str) -> _Transition:
        if not isinstance(action, str):
            return NotImplemented
        return _Transition(self, action)

    # --- running (called by Flow) ---------------------------------------------------------

    async def _run(self, ctx: Context) -> tuple[Any, Any]:
        """Run prep → exec → post on ``ctx.input``; return (output, action)."""
        mode = self._prep_mode
        if mode == SYNC:
            prep_res = self.prep(ctx)
        elif mode == ASYNC:
            prep_res = await self.prep(ctx)
        else:
            prep_res = await asyncio.to_thread(self.prep, ctx)

        batch = self._batch
        if batch is not None:
            if type(prep_res) is Unbatched:
                exec_res: Any = await self._exec_item(ctx, prep_res.value, None)
            else:
                exec_res = await run_batch(self, ctx, prep_res, batch)
        elif self._plain:
            # The common case, inlined: one attempt, straight into exec.
            try:
                mode = self._exec_mode
                if mode == SYNC:
                    exec_res = self.exec(prep_res)
                elif mode == ASYNC:
                    exec_res = await self.exec(prep_res)
                else:
                    exec_res = await asyncio.to_thread(self.exec, prep_res)
            except Exception as exc:
                exec_res = await self._fallback(prep_res, exc)
        else:
            exec_res = await self._exec_retrying(ctx, prep_res, None)
        if ctx._size_check is not None and (batch is None or type(prep_res) is Unbatched):
            # Before post: post may copy the output into shared state, and the output
            # becomes the next node's input. (A batch checks item by item, as they finish.)
            ctx._size_check(self.node_id, exec_res, 0)

        mode = self._post_mode
        if mode == SYNC:
            action = self.post(ctx, prep_res, exec_res)
        elif mode == ASYNC:
            # The declared post returns the action; an async override returns a coroutine of it.
            action = await self.post(ctx, prep_res, exec_res)  # type: ignore[misc]
        else:
            action = await asyncio.to_thread(self.post, ctx, prep_res, exec_res)
        return exec_res, action

    async def _exec_item(self, ctx: Context, item: Any, index: int | None) -> Any:
        """exec for one batch item (or the whole prep result), with retries and fallback."""
        if not self._plain:
            return await self._exec_retrying(ctx, item, index)
        try:
            return await self._attempt(item)
        except Exception as exc:
            return await self._fallback(item, exc)

    async def _exec_retrying(self, ctx: Context, prep_res: Any, index: int | None) -> Any:
        policy = self._retry
        attempt = 1
        while True:
            try:
                result = await self._attempt(prep_res)
            except Exception as exc:
                if attempt > policy.max_retries:
                    if index is None:
                        ctx._attempt = attempt
                    return await self._fallback(prep_res, exc)
                delay = policy.delay(attempt)
                # A failure that says how long to wait (an API's Retry-After) waits at least
                # that long; the error bounds the hint.
                hint = getattr(exc, "retry_after", None)
                if isinstance(hint, int | float) and hint > delay:
                    delay = float(hint)
                attempt += 1
                observer = ctx._observer
                if observer is not None:
                    observer(
                        NodeEvent(
                            "retrying",
                            self.node_id,
                            time.time(),
                            attempt=attempt,
                            error=exc,
                            item_index=index,
                            fields={"wait": delay},
                            flow_path=ctx._flow_path,
                        )
                    )
                if delay > 0:
                    await self.pause(delay)
                continue
            if index is None:
                ctx._attempt = attempt
            return result

    async def _attempt(self, prep_res: Any) -> Any:
        """One call of exec, bounded by the node's timeout."""
        mode = self._exec_mode
        timeout = self._timeout
        if timeout is None:
            if mode == SYNC:
                return self.exec(prep_res)
            if mode == ASYNC:
                return await self.exec(prep_res)
            return await asyncio.to_thread(self.exec, prep_res)
        deadline = asyncio.timeout(timeout)
        result: Any = None
        try:
            async with deadline:
                if mode == ASYNC:
                    result = await self.exec(prep_res)
                else:
                    result = await asyncio.to_thread(self.exec, prep_res)
        except TimeoutError as exc:
            # Only our own deadline becomes NodeTimeout; a TimeoutError exec raised itself
            # (a socket, say) stays what it is.
            if deadline.expired():
                raise NodeTimeout(self.node_id, timeout) from exc
            raise
        return result

    async def _fallback(self, prep_res: Any, exc: Exception) -> Any:
        mode = self._fallback_mode
        if mode == SYNC:
            return self.exec_fallback(prep_res, exc)
        if mode == ASYNC:
            return await self.exec_fallback(prep_res, exc)
        return await asyncio.to_thread(self.exec_fallback, prep_res, exc)


class _Transition:
    """The ``node - "action"`` half of ``node - "action" >> target``."""

    __slots__ = ("action", "source")

    def __init__(self, source: Node, action: str) -> None:
        self.source = source
        self.action = action

    def __rshift__(self, target: Node) -> Node:
        return self.source.connect(target, self.action)


class _FlowEnd(Node):
    """The target of an action that ends the flow (``Node.end``); never visited."""

    __slots__ = ()


FLOW_END: Node = _FlowEnd(node_id="(end)")
