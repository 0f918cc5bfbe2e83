"""Watching worker processes from a test: whether one still runs, and waiting for its end."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from tests.conftest import HANG_GUARD


def cpu_seconds(pid: int) -> float:
    """User and system CPU time ``pid`` has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


async def until_spinning(pid: int, *, burnt: float = 0.1) -> None:
    """Until ``pid`` has burnt ``burnt`` more seconds of CPU: an idle worker uses next to
    none, so a worker that did is running the script (an endless loop) it was sent."""
    start = cpu_seconds(pid)
    async with asyncio.timeout(HANG_GUARD):
        while cpu_seconds(pid) - start < burnt:  # noqa: ASYNC110 - no event to await here
            await asyncio.sleep(0.01)


def running(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie waiting for its reaper."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


async def until_dead(pid: int) -> None:
    """Until ``pid`` has died (a zombie or gone): a kill signal is delivered, not awaited."""
    async with asyncio.timeout(HANG_GUARD):
        while running(pid):  # noqa: ASYNC110 - the kernel has no event to await here
            await asyncio.sleep(0.01)
