"""End-to-end fixtures: real ``flowrunner serve`` processes on 127.0.0.1, always killed.

One server serves the whole module of follow tests (starting one costs seconds); the crash
test starts its own, because it kills it. The scripted model server (``models``) is the one
the ``llm`` and ``agent`` tests call; it wants ``tests.e2e.models.API_KEY``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from tests.conftest import HANG_GUARD
from tests.e2e.models import API_KEY
from tests.e2e.server import Server
from tests.llm_servers.server import ModelServer, model_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with Server(
        tmp_path_factory.mktemp("e2e"),
        lease_ttl_seconds=2,
        recovery_interval_seconds=0.5,
        # Their naps keep a node running; durable waits have servers of their own
        # (tests/e2e/test_waiting*.py).
        durable_wait_threshold_seconds=3600,
    ) as running:
        yield running


@pytest.fixture(scope="module")
def token(server: Server) -> str:
    return server.token()


@pytest.fixture
async def client(server: Server, token: str) -> AsyncIterator[httpx.AsyncClient]:
    """The admin's HTTP client on the module's ``server``."""
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=HANG_GUARD) as http:
        yield http


@pytest.fixture
def models() -> Iterator[ModelServer]:
    with model_server(api_key=API_KEY) as running:
        yield running
