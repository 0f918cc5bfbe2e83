"""One Redis pub/sub subscription that outlives Redis restarts and hangs.

A task owns the subscription's connection: it subscribes, waits for Redis to confirm, then
reads messages into a bounded queue. A quiet connection is probed with a PING; no answer (a
hung Redis keeps the socket open but says nothing) or any error closes it, and the task
subscribes again on a fresh connection with exponential backoff, for as long as the
subscription is open. While it is not ``live`` nothing published reaches it, so ``next``
wakes its reader (returns None) when the state changes: the follower then looks at the store.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import structlog
from redis.exceptions import RedisError  # imported through redis_bus, which checks the extra

from flowrunner.executions.live_queue import LiveQueue
from flowrunner.storage import ExecutionEvent

FIRST_RETRY_SECONDS = 0.1
MAX_RETRY_SECONDS = 2.0

log = structlog.get_logger("flowrunner.executions")

# Redis errors, and the socket and timeout errors redis-py lets through on a broken link.
LinkErrors = (RedisError, OSError, TimeoutError)


class RedisSubscription(LiveQueue):
    """Live events of one channel, drained by a reconnecting task into a bounded queue."""

    def __init__(
        self,
        open_pubsub: Callable[[], Any],
        channel: str,
        decode: Callable[[bytes | str], list[ExecutionEvent]],
        *,
        timeout: float,
        on_link: Callable[[bool], None],
        registry: set[RedisSubscription],
    ) -> None:
        super().__init__()
        self._open_pubsub = open_pubsub
        self._channel = channel
        self._decode = decode
        self._timeout = timeout
        self._on_link = on_link
        self.live = False
        self.first_attempt = asyncio.Event()
        self._registry = registry
        registry.add(self)
        self._reader = asyncio.get_running_loop().create_task(self._run())

    # --- the consumer's side (the rest is LiveQueue's) ----------------------------------------

    async def close(self) -> None:
        self._registry.discard(self)
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader

    # --- the reader task --------------------------------------------------------------------

    async def _run(self) -> None:
        delay = FIRST_RETRY_SECONDS
        while True:
            pubsub = self._open_pubsub()
            try:
                await self._subscribe(pubsub)
                self._set_live(True)
                delay = FIRST_RETRY_SECONDS
                await self._read(pubsub)
            except LinkErrors as exc:
                # Said once per outage: every follower retries every 2 s while Redis is away.
                report = log.warning if delay == FIRST_RETRY_SECONDS else log.debug
                report(
                    "event bus subscription lost, reconnecting",
                    channel=self._channel,
                    retry_in=delay,
                    error=repr(exc),
                )
                self._on_link(False)
            except Exception:
                # Not the link (a bug, an unexpected reply): recorded, and the subscription
                # keeps trying rather than leaving its follower on the store for good.
                log.exception("event bus subscription failed, reconnecting", channel=self._channel)
            finally:
                self._set_live(False)
                self.first_attempt.set()
                await _discard(pubsub, self._timeout)
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_RETRY_SECONDS)

    async def _subscribe(self, pubsub: Any) -> None:
        """Subscribe and wait for Redis to confirm (a hung Redis accepts the connection)."""
        async with asyncio.timeout(self._timeout):
            await pubsub.subscribe(self._channel)
            while True:
                message = await pubsub.get_message(timeout=self._timeout)
                if message is not None and message.get("type") == "subscribe":
                    return

    async def _read(self, pubsub: Any) -> None:
        """Queue messages until the link fails; a quiet link must answer a PING in time."""
        probing = False
        while True:
            async with asyncio.timeout(self._timeout * 2):  # a guard: the read has its own
                message = await pubsub.get_message(timeout=self._timeout)
            if message is None:
                if probing:
                    raise TimeoutError(f"no answer from Redis within {self._timeout}s")
                await pubsub.ping()  # sends only: the answer comes as a "pong" message
                probing = True
                continue
            probing = False
            if message.get("type") == "message":
                try:
                    events = self._decode(message["data"])
                except (ValueError, TypeError):
                    # Not ours (another writer on the channel): skipped, the link stays up.
                    log.warning("event bus message not understood", channel=self._channel)
                    continue
                for event in events:
                    self.offer(event)

    def _set_live(self, live: bool) -> None:
        # Whoever waits looks at the store now; not on the first subscribe, which misses
        # nothing (``RedisBus.subscribe`` returns once it is confirmed).
        if live != self.live:
            self.live = live
            if self.first_attempt.is_set():
                self.offer(None)
        if live:
            self.first_attempt.set()
            self._on_link(True)


async def _discard(pubsub: Any, within: float) -> None:
    """Close the connection (no UNSUBSCRIBE: it goes with the connection), bounded like every
    call on a link that may be hung."""
    with contextlib.suppress(*LinkErrors):
        async with asyncio.timeout(within):
            await pubsub.aclose()
