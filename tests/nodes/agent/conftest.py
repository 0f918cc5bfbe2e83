"""The agent's tests: the scripted model servers, the test MCP server allowed, a sandbox."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from flowrunner.scripting import Sandbox
from tests.nodes.llm.conftest import allow_loopback, models
from tests.nodes.mcp.conftest import ALLOWED, pooled_sessions_closed

__all__ = ["allow_loopback", "models", "pooled_sessions_closed"]


@pytest_asyncio.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    async with Sandbox(workers=1) as box:
        yield box


@pytest.fixture(autouse=True)
def mcp_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLOWRUNNER_MCP_STDIO_COMMANDS", ALLOWED)
