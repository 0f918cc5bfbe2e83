"""A run's MCP sessions: one per server, opened at the run's first visit, closed at its end.

By default an ``mcp`` node (and an ``agent``'s MCP tools) talks to a server over the run's
session with it: the first visit connects, later visits of the same run reuse it, and the
run's end closes it (``RunResources``, nodes/run_resources.py). Sessions of one run are never
another run's. Each holds one of the loop's fair session slots while it lives (pool.py), and
closes itself after ``FLOWRUNNER_MCP_POOL_IDLE_SECONDS`` unused (a long delay in the run
need not keep a process waiting); a session whose server went away is dropped, so the next
visit reconnects.

A session is owned by a task of its own (the pool's ``_Pooled``): the SDK's task groups must
be entered and left by one task, and a run's visits come from several (batch items, an
agent's parallel tool calls).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from flowrunner.nodes.mcp.errors import McpConnectionFailed
from flowrunner.nodes.mcp.pool import _Pooled
from flowrunner.nodes.mcp.server import McpSettings, ServerSpec
from flowrunner.nodes.mcp.session import McpSession

__all__ = ["RunSessions"]


class RunSessions:
    """The MCP sessions of one run, by server."""

    def __init__(self) -> None:
        self._entries: dict[ServerSpec, _Pooled] = {}
        # Every session whose task has not ended, also those already replaced or dropped
        # (a server that went away, an idle close under way): ``aclose`` waits for them all,
        # so no process outlives the run.
        self._live: set[_Pooled] = set()

    def __len__(self) -> int:
        return sum(1 for entry in self._entries.values() if not entry.closed)

    @asynccontextmanager
    async def session(
        self, spec: ServerSpec, settings: McpSettings, where: str
    ) -> AsyncIterator[McpSession]:
        entry = self._entries.get(spec)
        if entry is None or entry.closed:
            entry = self._entries[spec] = _Pooled(
                spec, settings, settings.pool_idle_seconds, where, slot=True
            )
            self._live.add(entry)
            entry.start(lambda done: self._ended(spec, done))
        entry.users += 1
        try:
            yield await entry.ready(where)
        except McpConnectionFailed:
            entry.close()  # the server went away: the next visit reconnects
            self._forget(spec, entry)
            raise
        finally:
            entry.users -= 1
            entry.last_used = asyncio.get_running_loop().time()

    async def aclose(self) -> None:
        """Close every session (their processes end) and wait for it."""
        entries = list(self._live)
        self._entries.clear()
        for entry in entries:
            entry.close()
        for entry in entries:
            await entry.wait_closed()

    def _ended(self, spec: ServerSpec, entry: _Pooled) -> None:
        self._live.discard(entry)
        self._forget(spec, entry)

    def _forget(self, spec: ServerSpec, entry: _Pooled) -> None:
        if self._entries.get(spec) is entry:
            del self._entries[spec]
