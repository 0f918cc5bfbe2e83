"""The per-process run machinery: built from settings, resumes leftovers, shuts down cleanly."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from flowrunner.config import Settings
from flowrunner.executions.runtime import execution_runtime
from flowrunner.storage import Account, Store
from tests.conftest import HANG_GUARD, require_service
from tests.executions.conftest import STEPS


def _settings(tmp_path: Path, **overrides: Any) -> Settings:
    return Settings(data_dir=tmp_path, recovery_interval_seconds=0.1, **overrides)


async def _flow(store: Store, account: Account) -> str:
    flow = await store.flows.create(account.id, name="t")
    await store.flows.add_version(account.id, flow.id, yaml=STEPS)
    return flow.id


async def test_runs_left_by_a_dead_process_are_resumed_on_start(
    store: Store, account: Account, tmp_path: Path
) -> None:
    flow_id = await _flow(store, account)
    left = await store.executions.create(account.id, flow_id=flow_id, flow_version=1, input={})
    await store.executions.acquire_lease(
        account.id, left.id, owner="dead", ttl=timedelta(milliseconds=1)
    )
    async with execution_runtime(_settings(tmp_path), store) as service:
        done = await service.wait(account.id, left.id, within=HANG_GUARD)
    assert done.status == "completed"


@pytest.mark.parametrize("bus", ["in-process", "redis"])
async def test_a_run_started_through_the_runtime_completes(
    store: Store, account: Account, tmp_path: Path, bus: str
) -> None:
    extra: dict[str, Any] = {}
    if bus == "redis":
        extra["event_bus_url"] = require_service("FLOWRUNNER_TEST_REDIS_URL", "Redis")
    flow_id = await _flow(store, account)
    async with execution_runtime(_settings(tmp_path, **extra), store) as service:
        started = await service.start(account.id, flow_id, {"name": "rt"})
        done = await service.wait(account.id, started.execution.id, within=HANG_GUARD)
    assert done.status == "completed"
    assert done.output == {"done": True}
