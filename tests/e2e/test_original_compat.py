"""Through a real server, what users of the original flowrunner rely on: its health paths,
and flows carrying top-level keys this format does not know (a warning, never an error)."""

from __future__ import annotations

import httpx
import pytest

from tests.e2e.server import Server

pytestmark = pytest.mark.slow

EXTRA_KEYS = """\
metadata: {name: Extra keys}
version: 2
settings: {concurrency: 4}
nodes:
  a: {type: log, params: {message: x}}
"""


@pytest.mark.parametrize("path", ["/healthz", "/health", "/api/v1/health"])
def test_every_health_path_answers_ok_without_a_token(server: Server, path: str) -> None:
    response = httpx.get(f"{server.url}{path}", timeout=10)
    assert response.status_code == 200
    assert response.json() == httpx.get(f"{server.url}/healthz", timeout=10).json()
    assert response.json()["status"] == "ok"


def test_unknown_top_level_keys_are_warnings_and_the_flow_is_saved(
    server: Server, token: str
) -> None:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/yaml"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=30) as http:
        report = http.post("/api/v1/flows/validate", content=EXTRA_KEYS)
        assert report.status_code == 200, report.text
        assert report.json()["valid"] is True
        problems = report.json()["problems"]
        assert {(p["path"], p["severity"]) for p in problems} == {
            ("version", "warning"),
            ("settings", "warning"),
        }
        created = http.post("/api/v1/flows", content=EXTRA_KEYS)
        assert created.status_code == 201, created.text
