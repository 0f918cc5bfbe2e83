"""Sandbox workers of a real ``flowrunner serve``: none until a script runs, closed again once
idle for ``FLOWRUNNER_SCRIPT_WORKER_IDLE_SECONDS``, started again by the next script."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.conftest import HANG_GUARD
from tests.e2e.server import Server, create_flow
from tests.scripting.processes import running

pytestmark = pytest.mark.slow

# Two statements: outside the native subset (one `return`), so it needs a worker.
FLOW = """\
metadata: {name: one transform}
nodes:
  t: {type: transform, params: {script: 'const n = input.n + 1; return {n};'}}
"""


def children(pid: int) -> set[int]:
    """The live (not zombie) child processes of ``pid``."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if stat[1] == str(pid) and running(int(entry.name)):
                found.add(int(entry.name))
    return found


async def test_workers_start_with_the_first_script_and_close_when_idle(tmp_path: Path) -> None:
    with Server(tmp_path, script_worker_idle_seconds=0.5) as server:
        assert server.process is not None
        pid = server.process.pid
        async with server.client() as client:
            flow_id = await create_flow(client, FLOW)
            assert children(pid) == set()  # the API validates flows without the sandbox
            run = f"/api/v1/flows/{flow_id}/run?wait=20s"
            first = await client.post(run, json={"input": {"n": 1}})
            assert first.json()["output"] == {"n": 2}
            workers = children(pid)
            assert len(workers) == 1  # one caller at a time: one worker of the two allowed
            async with asyncio.timeout(HANG_GUARD):
                while children(pid) & workers:  # noqa: ASYNC110 - no event to await
                    await asyncio.sleep(0.05)
            again = await client.post(run, json={"input": {"n": 2}})
            assert again.json()["output"] == {"n": 3}
            assert len(children(pid)) == 1
