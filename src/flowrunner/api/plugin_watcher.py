"""The server's side of plugins: the folder watcher's task, and the audit of every change.

Every reload that changed something (the watcher's, an admin's) is one ``plugin.reloaded``
audit record: which plugins changed or went away, and the errors.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from flowrunner.audit import AuditLog
from flowrunner.audit.actions import PLUGIN_RELOADED
from flowrunner.plugins.manager import PluginManager, ReloadReport

log = logging.getLogger("flowrunner.plugins")


async def audit_reload(audit: AuditLog, report: ReloadReport, actor_id: str | None) -> None:
    await audit.record(
        PLUGIN_RELOADED,
        account_id=actor_id,
        actor_id=actor_id,
        target=None,
        outcome="failed" if report.errors else "ok",
        details={
            "generation": report.generation,
            "changed": list(report.changed),
            "removed": list(report.removed),
            "errors": dict(report.errors),
        },
    )


@contextlib.asynccontextmanager
async def watching(plugins: PluginManager, audit: AuditLog, *, watch: bool) -> AsyncIterator[None]:
    """While inside: the watcher's reloads are audited, and with ``watch`` a task reloads on
    every change of the plugins folder."""

    async def on_change(report: ReloadReport) -> None:
        await audit_reload(audit, report, None)

    plugins.on_change = on_change
    folder = plugins.folder
    task: asyncio.Task[None] | None = None
    stop = asyncio.Event()
    if watch and folder is not None:
        # A folder created after the start is waited for and then watched.
        task = asyncio.create_task(plugins.watch(stop), name="plugins-watch")
    try:
        yield
    finally:
        plugins.on_change = None
        stop.set()
        if task is not None:
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(task, 5)
