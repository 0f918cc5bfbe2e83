"""Graceful shutdown through a real process: open event streams do not hold it, and the run
that was interrupted resumes when the server starts again."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import HANG_GUARD
from tests.e2e.server import Server

pytestmark = pytest.mark.slow


async def _until_ended(client: httpx.AsyncClient, execution_id: str) -> dict[str, Any]:
    async with asyncio.timeout(HANG_GUARD):
        while True:  # another process runs it: polling its API is the only way to watch
            run: dict[str, Any] = (await client.get(f"/api/v1/executions/{execution_id}")).json()
            if run["status"] in ("completed", "failed", "canceled"):
                return run
            await asyncio.sleep(0.1)


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
        async with server.client() as client:
            created = await client.post(
                "/api/v1/flows", content=FLOW, headers={"content-type": "application/yaml"}
            )
            flow_id = created.json()["id"]
            started = await client.post(f"/api/v1/flows/{flow_id}/run", json={"input": {}})
            execution_id = started.json()["execution_id"]

            napping = asyncio.Event()

            async def follow() -> None:
                async with client.stream(
                    "GET", f"/api/v1/executions/{execution_id}/events"
                ) as stream:
                    async for line in stream.aiter_lines():
                        if line.startswith("data:"):
                            data = json.loads(line.removeprefix("data:"))["data"]
                            if (data.get("node_id"), data.get("state")) == ("nap", "started"):
                                napping.set()

            streaming = asyncio.get_running_loop().create_task(follow())
            # The stream is open and has delivered the nap's start: the run is mid-nap.
            async with asyncio.timeout(HANG_GUARD):
                await napping.wait()
            assert server.process is not None
            server.process.terminate()
            # An open stream held shutdown forever before; now the server cuts it after its
            # grace period. The timeout only guards the test against that hang.
            await asyncio.to_thread(server.process.wait, HANG_GUARD)
            with pytest.raises(httpx.HTTPError):
                await streaming

        server.start()
        async with server.client() as client:
            done = await client.post(
                f"/api/v1/flows/{flow_id}/run?wait={HANG_GUARD:.0f}s",
                json={"input": {}},
                headers={"Idempotency-Key": "after-restart"},
            )
            assert done.json()["status"] == "completed"
            # Recovery claims the interrupted run once its lease expires, then naps again.
            first = await _until_ended(client, execution_id)
            assert first["status"] == "completed"
            assert first["output"] == {"woke": True}
    finally:
        server.kill()
