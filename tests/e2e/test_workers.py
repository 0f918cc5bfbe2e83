"""``flowrunner serve --workers 2``: two processes on one port and one SQLite database."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from tests.e2e.server import Server

pytestmark = pytest.mark.slow

SECRET_FLOW = """metadata: {name: Uses a secret}
nodes:
  one: {type: set, params: {values: {a: "${input.n}"}}, next: {default: two}}
  two: {type: set, params: {values: {token: "${secrets.API_TOKEN}"}}}
"""


async def test_two_worker_processes_share_the_port_the_database_and_the_key_file(
    tmp_path: Path,
) -> None:
    server = Server(tmp_path, serve_args=["--workers", "2"])
    server.env.pop("FLOWRUNNER_SECRET_KEYS")  # the generated key file, created once
    server.start(timeout=60)
    try:
        async with server.client() as http:
            put = await http.put("/api/v1/accounts/me/secrets/API_TOKEN", json={"value": "s3cret"})
            assert put.status_code in (200, 201), put.text
            created = await http.post(
                "/api/v1/flows", content=SECRET_FLOW, headers={"content-type": "application/yaml"}
            )
            assert created.status_code == 201, created.text
            path = f"/api/v1/flows/{created.json()['id']}/run?wait=20s"

            async def run(n: int) -> httpx.Response:
                # A connection of its own each: uvicorn's processes take turns accepting.
                async with httpx.AsyncClient(
                    base_url=server.url, headers=http.headers, timeout=30
                ) as own:
                    return await own.post(path, json={"input": {"n": n}})

            answers = await asyncio.gather(*(run(n) for n in range(12)))
        # Every process decrypts the secret (one key file), and masks it in the output.
        for answer in answers:
            assert answer.status_code == 200, answer.text
            assert answer.json()["status"] == "completed", answer.text
            assert "s3cret" not in answer.text
    finally:
        server.stop()
