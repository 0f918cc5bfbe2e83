"""One warm sandbox per test module: spawning workers per test would dominate the run time.

Tests that break a worker (timeouts, memory bombs, kills) share it on purpose: each one then
checks that the very next evaluation works, which is the recovery promise under test.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from flowrunner.scripting import Sandbox


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def sandbox() -> AsyncIterator[Sandbox]:
    async with Sandbox(workers=2, timeout=1.0, memory_mb=64) as box:
        yield box
