"""Storage call latency: each entity family of the store behind a thin timing proxy.

Only coroutine methods are timed (every storage call is one); anything else passes through.
A wrapper is made once per method and kept on the proxy, so a call costs two clock reads and
one histogram observation on top of the store's own work.
"""

from __future__ import annotations

import functools
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any, cast

from flowrunner.metrics.registry import Metrics
from flowrunner.storage import Store

FAMILIES = ("accounts", "tokens", "flows", "secrets", "executions", "webhooks", "audit", "kv")


class _TimedFamily:
    def __init__(self, inner: object, family: str, metrics: Metrics) -> None:
        self._inner = inner
        self._family = family
        self._metrics = metrics

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if name.startswith("_") or not inspect.iscoroutinefunction(attr):
            return attr
        timed = _timed(attr, self._family, name, self._metrics)
        setattr(self, name, timed)  # found directly next time, __getattr__ not called
        return timed


def _timed(
    method: Callable[..., Awaitable[Any]], family: str, name: str, metrics: Metrics
) -> Callable[..., Awaitable[Any]]:
    seconds = metrics.storage_seconds.labels(family, name)

    @functools.wraps(method)
    async def call(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return await method(*args, **kwargs)
        except Exception as exc:
            metrics.storage_errors.labels(family, name, type(exc).__name__).inc()
            raise
        finally:
            seconds.observe(time.perf_counter() - start)

    return call


class _MeteredStore:
    def __init__(self, inner: Store, metrics: Metrics) -> None:
        self._inner = inner
        for family in FAMILIES:
            setattr(self, family, _TimedFamily(getattr(inner, family), family, metrics))

    async def connect(self) -> None:
        await self._inner.connect()

    async def close(self) -> None:
        await self._inner.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def metered_store(store: Store, metrics: Metrics) -> Store:
    """``store`` with every family's calls timed into ``metrics``."""
    return cast(Store, _MeteredStore(store, metrics))
