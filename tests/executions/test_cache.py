"""Compiled flows are built once per version and reused by every run of it."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from flowrunner.definition import load_flow
from flowrunner.executions import FlowCache
from flowrunner.executions import cache as cache_module
from flowrunner.plugins.manager import PluginManager
from tests.executions.conftest import STEPS, Harness


async def test_a_version_is_compiled_once_and_read_once(harness: Harness) -> None:
    flow_id = await harness.flow(STEPS)
    cache = FlowCache()
    account = harness.account.id
    first = await cache.load(harness.store.flows, account, flow_id, 1)
    version = await harness.store.flows.get_version(account, flow_id, 1)
    assert cache.get(version) is first
    # Another version with the same YAML shares the compiled graph (same checksum).
    await harness.store.flows.add_version(account, flow_id, yaml=STEPS)
    assert await cache.load(harness.store.flows, account, flow_id, 2) is first


async def test_the_cache_is_bounded(harness: Harness) -> None:
    cache = FlowCache(size=1)
    flow_id = await harness.flow(STEPS)
    other = await harness.flow(STEPS.replace("name: steps", "name: other"))
    one = await cache.load(harness.store.flows, harness.account.id, flow_id, 1)
    await cache.load(harness.store.flows, harness.account.id, other, 1)
    assert await cache.load(harness.store.flows, harness.account.id, flow_id, 1) is not one


async def test_a_version_is_parsed_and_compiled_off_the_event_loop_thread(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads: list[int] = []
    original = load_flow

    def spy(*args: Any, **kwargs: Any) -> Any:
        threads.append(threading.get_ident())
        return original(*args, **kwargs)

    monkeypatch.setattr(cache_module, "load_flow", spy)
    flow_id = await harness.flow(STEPS)
    await FlowCache().load(harness.store.flows, harness.account.id, flow_id, 1)
    assert len(threads) == 1
    assert threads[0] != threading.get_ident()


async def test_a_new_registry_generation_compiles_the_version_again(
    harness: Harness, tmp_path: Path
) -> None:
    # A plugin reload swaps in a registry with a higher generation: a flow compiled against
    # the old plugin code must not be served to new runs.
    plugins = PluginManager(folder=tmp_path, entry_points=False)
    plugins.reload()
    cache = FlowCache(registry=plugins.current)
    flow_id = await harness.flow(STEPS)
    account = harness.account.id
    before = await cache.load(harness.store.flows, account, flow_id, 1)
    assert await cache.load(harness.store.flows, account, flow_id, 1) is before
    (tmp_path / "new.py").write_text(
        "from flowrunner.plugins import FunctionNodeType, Plugin\n"
        "plugin = Plugin('new', '1', [FunctionNodeType('n.x', 'd', lambda call: 1)])\n"
    )
    plugins.reload()
    after = await cache.load(harness.store.flows, account, flow_id, 1)
    assert after is not before
    assert await cache.load(harness.store.flows, account, flow_id, 1) is after
