"""Watching worker processes from a test: whether one still runs, and waiting for its end."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.conftest import HANG_GUARD


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
