"""Schedules through real ``flowrunner serve`` processes: two servers on one database fire
each occurrence of a schedule once, and the runs record which schedule and occurrence
started them. (Timing, catch-up and DST are tested with an injected clock in
``tests/storage/test_triggers.py`` and ``tests/triggers/test_occurrences.py``.)"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.server import Server, create_flow
from tests.executions.conftest import eventually

pytestmark = pytest.mark.slow

EVERY_SECOND = """metadata: {name: Every second}
triggers:
  - schedule: {interval: 1s, input: {greeting: hello}}
nodes:
  say:
    type: set
    params: {values: {said: "${input.greeting}", at: "${input.trigger.occurrence}"}}
"""


async def _runs(client: httpx.AsyncClient, flow_id: str) -> list[dict[str, Any]]:
    page = await client.get("/api/v1/executions", params={"flow_id": flow_id, "limit": 1000})
    assert page.status_code == 200, page.text
    items: list[dict[str, Any]] = page.json()["items"]
    return items


async def test_two_servers_sharing_a_database_fire_each_occurrence_once(tmp_path: Path) -> None:
    with Server(tmp_path) as first:
        second = Server(tmp_path)
        second.env["FLOWRUNNER_SECRET_KEYS"] = first.env["FLOWRUNNER_SECRET_KEYS"]
        with second:
            async with first.client() as client:
                flow_id = await create_flow(client, EVERY_SECOND)

                async def several() -> bool:
                    runs = await _runs(client, flow_id)
                    return sum(bool(r["status"] == "completed") for r in runs) >= 5

                await eventually(several, "the schedule fires at least 5 times")
                await client.delete(f"/api/v1/flows/{flow_id}")  # stops the schedule
                runs = await _runs(client, flow_id)
    occurrences = Counter(r["input"]["trigger"]["occurrence"] for r in runs)
    assert occurrences, runs
    assert set(occurrences.values()) == {1}, occurrences  # never two runs for one occurrence
    trigger_ids = {r["input"]["trigger"]["id"] for r in runs}
    assert len(trigger_ids) == 1
    for run in runs:
        assert run["input"]["greeting"] == "hello"
        assert run["input"]["trigger"]["kind"] == "schedule"
        if run["status"] == "completed":
            assert run["output"]["at"] == run["input"]["trigger"]["occurrence"]
