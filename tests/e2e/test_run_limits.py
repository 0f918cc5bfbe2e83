"""Through a real server: a run whose data outgrows its size caps fails, and the server's
memory stays bounded while it does.

The fan-out below is the shape that took a server down: two batch nodes in a row over a
1,000-item list, each item returning its whole input. The second node's output is a
thousand references to one 5 MB list in memory, five gigabytes as JSON; before the caps,
recording it grew the server past 3 GB in seconds.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.server import Server

pytestmark = pytest.mark.slow

FAN_OUT = """metadata: {name: Fan-out}
nodes:
  first:
    type: log
    params: {message: "item ${index}"}
    batch: {items: "${input.items}"}
    next: {default: second}
  second:
    type: log
    params: {message: "item ${index}"}
    batch: {items: "${input}", strategy: parallel}
"""
# About 5 KB of JSON: 1,000 short strings.
FAN_OUT_INPUT = {"items": [f"i{n:03}" for n in range(1000)]}
# Far above an idle server (~100-200 MB), far below what the uncapped run reached (GBs).
RSS_BOUND_KB = 1024 * 1024


def peak_rss_kb(pid: int) -> int:
    """The process's high-water resident set size (VmHWM), in kB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM in /proc/<pid>/status")


async def _run_to_end(client: httpx.AsyncClient, yaml: str, run_input: Any) -> dict[str, Any]:
    created = await client.post(
        "/api/v1/flows", content=yaml, headers={"content-type": "application/yaml"}
    )
    assert created.status_code == 201, created.text
    started = await client.post(
        f"/api/v1/flows/{created.json()['id']}/run", json={"input": run_input}
    )
    assert started.status_code == 202, started.text
    execution_id = started.json()["execution_id"]
    async with asyncio.timeout(120):  # a hang guard only
        while True:
            run = (await client.get(f"/api/v1/executions/{execution_id}")).json()
            if run["status"] in ("completed", "failed", "canceled"):
                return dict(run)
            await asyncio.sleep(0.2)


async def test_batch_fan_out_past_the_output_cap_fails_the_run_and_server_memory_stays_bounded(
    tmp_path: Path,
) -> None:
    server = Server(tmp_path)
    try:
        server.start()
        assert server.process is not None
        async with server.client() as client:
            run = await _run_to_end(client, FAN_OUT, FAN_OUT_INPUT)
            assert run["status"] == "failed"
            error = run["error"]
            assert error["code"] == "size_limit_exceeded"
            assert error["node_id"] == "second"
            assert "FLOWRUNNER_MAX_NODE_OUTPUT_BYTES" in error["message"]
            assert str(8 << 20) in error["message"]
            # The server is still healthy, and never held anything near the uncapped copy.
            assert (await client.get("/healthz")).status_code == 200
        assert peak_rss_kb(server.process.pid) < RSS_BOUND_KB
    finally:
        server.stop()


async def test_shared_state_over_its_cap_fails_the_run_naming_the_node(tmp_path: Path) -> None:
    # Each node stores the previous one's output and its own under a new key: shared doubles
    # at every step while each output stays under the (default) output cap.
    grow = """metadata: {name: Grow}
nodes:
  a: {type: set, params: {values: {a: "${input.blob}"}}, next: {default: b}}
  b: {type: set, params: {values: {b1: "${shared.a}", b2: "${shared.a}"}}, next: {default: c}}
  c: {type: log, params: {message: done}}
"""
    server = Server(tmp_path, max_shared_bytes=3000, max_node_output_bytes=2500)
    try:
        server.start()
        async with server.client() as client:
            run = await _run_to_end(client, grow, {"blob": "x" * 500})
        assert run["status"] == "failed"
        assert run["error"]["code"] == "size_limit_exceeded"
        assert run["error"]["node_id"] == "b"
        assert "shared state" in run["error"]["message"]
        assert "FLOWRUNNER_MAX_SHARED_BYTES" in run["error"]["message"]
    finally:
        server.stop()
