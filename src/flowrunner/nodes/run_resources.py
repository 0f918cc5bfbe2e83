"""What a run's nodes keep open across their visits, closed when the run ends.

An MCP node visited five times in a run talks to its server over one session, not five
(each may be a child process to start). ``CompiledFlow.run`` gives every run a
``RunResources`` (``RUN_RESOURCES``, a run-scoped value, shared by the run's path sub-flows)
and closes it when the run ends, however it ends: completed, failed, cancelled or suspended.
A node keeps something in it with ``get(key, make)``; what it keeps has an ``aclose``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from flowrunner.engine import RunScoped

__all__ = ["RUN_RESOURCES", "Closeable", "RunResources"]


class Closeable(Protocol):
    async def aclose(self) -> None: ...


C = TypeVar("C", bound=Closeable)


class RunResources:
    __slots__ = ("_closed", "_held")

    def __init__(self) -> None:
        self._held: dict[Any, Closeable] = {}
        self._closed = False

    def get(self, key: Any, make: Callable[[], C]) -> C:
        """The resource kept under ``key``, made with ``make`` on first use."""
        if self._closed:
            raise RuntimeError("the run's resources are closed: the run has ended")
        held = self._held.get(key)
        if held is None:
            held = self._held[key] = make()
        return held  # type: ignore[return-value]  # what make made for this key

    async def aclose(self) -> None:
        """Close everything kept, last made first; a failure to close one does not keep
        the others open (the first is raised once all were tried)."""
        self._closed = True
        held = list(self._held.values())
        self._held.clear()
        results = await asyncio.gather(
            *(resource.aclose() for resource in reversed(held)), return_exceptions=True
        )
        for result in results:
            if isinstance(result, BaseException):
                raise result


RUN_RESOURCES: RunScoped[RunResources | None] = RunScoped("run_resources", None)
