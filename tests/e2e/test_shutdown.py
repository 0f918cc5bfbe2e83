"""Graceful shutdown through a real process: open event streams do not hold it, and the run
that was interrupted resumes when the server starts again."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.server import Server

pytestmark = pytest.mark.slow

FLOW = """metadata: {name: Napper}
nodes:
  nap: {type: delay, params: {duration: 3s}, next: {default: after}}
  after: {type: set, params: {values: {woke: true}}}
"""


async def test_sigterm_with_an_open_stream_exits_and_the_run_resumes_after_restart(
    tmp_path: Path,
) -> None:
    server = Server(tmp_path, shutdown_grace_seconds=1, lease_ttl_seconds=2)
    try:
        server.start()
        headers = {"Authorization": f"Bearer {server.token()}"}
        async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=30) as client:
            created = await client.post(
                "/api/v1/flows", content=FLOW, headers={"content-type": "application/yaml"}
            )
            flow_id = created.json()["id"]
            started = await client.post(f"/api/v1/flows/{flow_id}/run", json={"input": {}})
            execution_id = started.json()["execution_id"]

            async def follow() -> None:
                async with client.stream(
                    "GET", f"/api/v1/executions/{execution_id}/events"
                ) as stream:
                    async for _ in stream.aiter_lines():
                        pass

            streaming = asyncio.get_running_loop().create_task(follow())
            await asyncio.sleep(0.5)
            assert server.process is not None
            began = time.monotonic()
            server.process.terminate()
            await asyncio.to_thread(server.process.wait, 15)
            assert time.monotonic() - began < 10
            with pytest.raises(httpx.HTTPError):
                await streaming

        server.start()
        headers = {"Authorization": f"Bearer {server.token()}"}
        async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=30) as client:
            done = await client.post(
                f"/api/v1/flows/{flow_id}/run?wait=20s",
                json={"input": {}},
                headers={"Idempotency-Key": "after-restart"},
            )
            assert done.json()["status"] == "completed"
            first = await client.get(f"/api/v1/executions/{execution_id}")
            for _ in range(100):
                if first.json()["status"] == "completed":
                    break
                await asyncio.sleep(0.1)
                first = await client.get(f"/api/v1/executions/{execution_id}")
            assert first.json()["status"] == "completed"
            assert first.json()["output"] == {"woke": True}
    finally:
        server.kill()
