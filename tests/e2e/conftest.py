"""End-to-end fixtures: real ``flowrunner serve`` processes on 127.0.0.1, always killed.

One server serves the whole module of follow tests (starting one costs seconds); the crash
test starts its own, because it kills it.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.server import Server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = Server(
        tmp_path_factory.mktemp("e2e"), lease_ttl_seconds=2, recovery_interval_seconds=0.5
    )
    running.start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def token(server: Server) -> str:
    return server.token()
