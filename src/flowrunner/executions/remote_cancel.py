"""Cancels across processes: an API process asks, the worker running the run stops it.

One Redis pub/sub channel carries execution ids. Every worker listens and cancels the runs it
holds; the others ignore the message. Best effort like the event bus: a worker that misses the
message (Redis down at that moment) still loses the run at its next step, because the API
records ``canceled`` itself when the run does not end in time and the runner's final
compare-and-set then fails (``Runner.record_canceled``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import structlog
from redis import asyncio as aioredis

from flowrunner.executions.redis_subscription import LinkErrors

CHANNEL = "flowrunner:cancel"
RETRY_SECONDS = 1.0

log = structlog.get_logger("flowrunner.executions")


class RemoteCancel:
    def __init__(self, redis_url: str, *, timeout: float = 2.0, channel: str = CHANNEL) -> None:
        self._url = redis_url
        self._timeout = timeout
        self._channel = channel
        self._redis = aioredis.from_url(
            redis_url, socket_timeout=timeout, socket_connect_timeout=timeout
        )
        self._task: asyncio.Task[None] | None = None
        self.listening = asyncio.Event()
        """Set once the subscription is confirmed (tests wait for it)."""

    async def request(self, execution_id: str) -> bool:
        """Tell every worker; False if Redis could not be reached."""
        try:
            await self._redis.publish(self._channel, execution_id)
        except LinkErrors:
            log.warning("could not publish a cancel", execution_id=execution_id, exc_info=True)
            return False
        return True

    def listen(self, on_cancel: Callable[[str], Awaitable[None]]) -> None:
        """Call ``on_cancel(execution_id)`` for every request, reconnecting as needed."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._listen(on_cancel))

    async def _listen(self, on_cancel: Callable[[str], Awaitable[None]]) -> None:
        # Its own client: a pub/sub connection blocks on reads, without a socket timeout.
        client = aioredis.from_url(self._url, socket_connect_timeout=self._timeout)
        try:
            while True:
                try:
                    async with client.pubsub() as pubsub:
                        await pubsub.subscribe(self._channel)
                        self.listening.set()
                        async for message in pubsub.listen():
                            if message.get("type") != "message":
                                continue
                            data = message["data"]
                            execution_id = data.decode() if isinstance(data, bytes) else str(data)
                            await on_cancel(execution_id)
                except LinkErrors:
                    self.listening.clear()
                    log.warning("cancel listener lost Redis; reconnecting", exc_info=True)
                    await asyncio.sleep(RETRY_SECONDS)
        finally:
            await client.aclose()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        with contextlib.suppress(*LinkErrors):
            await self._redis.aclose()
