"""Through a real server: the health probes, the original flowrunner's paths included."""

from __future__ import annotations

import httpx
import pytest

from tests.e2e.server import Server

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("path", ["/healthz", "/health", "/api/v1/health"])
def test_every_health_path_answers_ok_without_a_token(server: Server, path: str) -> None:
    response = httpx.get(f"{server.url}{path}", timeout=10)
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
