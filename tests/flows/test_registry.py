"""The flow registry on a real store: versions, validation, isolation, search, diff, restore."""

from __future__ import annotations

import shutil
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from flowrunner.audit import AuditLog
from flowrunner.definition import load as load_module
from flowrunner.definition.limits import FlowLimits
from flowrunner.errors import Conflict, DefinitionError, FlowTooLarge, NotFound
from flowrunner.flows import FlowChecker, FlowFilters, FlowRegistry
from flowrunner.storage import AuditRecord, Store
from flowrunner.storage.memory import MemoryStore
from flowrunner.storage.sql import SqlStore


def flow_yaml(name: str = "Greeter", description: str = "Says hello", value: str = "hi") -> str:
    return (
        f"metadata:\n  name: {name}\n  description: {description}\n"
        f"nodes:\n  greet:\n    type: set\n    params:\n      values: {{greeting: {value}}}\n"
    )


BROKEN = (
    "metadata:\n  name: Broken\nnodes:\n  a:\n    type: no.such.type\n    next: {default: ghost}\n"
)


@pytest.fixture(params=["memory", "sqlite"])
async def store(
    request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path
) -> AsyncIterator[Store]:
    if request.param == "memory":
        store: Store = MemoryStore()
    else:
        shutil.copyfile(sqlite_template, tmp_path / "flows.db")
        store = SqlStore(f"sqlite:///{tmp_path / 'flows.db'}")
    await store.connect()
    yield store
    await store.close()


@pytest.fixture
def audit(store: Store) -> AuditLog:
    return AuditLog(store)


async def audited(audit: AuditLog, account_id: str) -> list[AuditRecord]:
    """The account's audit records, oldest first."""
    return list(reversed((await audit.list(account_id, limit=100)).items))


@pytest.fixture
def registry(store: Store, audit: AuditLog) -> FlowRegistry:
    return FlowRegistry(store, audit)


async def test_create_stores_version_one_with_metadata_from_the_yaml(
    registry: FlowRegistry, audit: AuditLog
) -> None:
    saved = await registry.create("acc-a", flow_yaml())
    assert saved.flow.name == "Greeter"
    assert saved.flow.description == "Says hello"
    assert saved.flow.current_version == 1
    assert saved.version.number == 1
    assert saved.version.yaml == flow_yaml()
    (record,) = await audited(audit, "acc-a")
    assert (record.action, record.target) == ("flow.created", f"flow:{saved.flow.id}")
    assert record.data == {"outcome": "ok", "version": 1}


async def test_explicit_name_and_tags_win_over_the_yaml(registry: FlowRegistry) -> None:
    saved = await registry.create("acc-a", flow_yaml(), name="Mine", tags=["ops", "daily"])
    assert saved.flow.name == "Mine"
    assert saved.flow.tags == ("ops", "daily")


async def test_invalid_yaml_is_rejected_with_every_problem_and_nothing_stored(
    registry: FlowRegistry,
) -> None:
    with pytest.raises(DefinitionError) as caught:
        await registry.create("acc-a", BROKEN)
    errors = caught.value.errors
    assert len(errors) >= 2
    assert all(p.line is not None and p.column is not None for p in errors)
    assert (await registry.list("acc-a")).items == []


async def test_update_appends_an_immutable_version(registry: FlowRegistry) -> None:
    saved = await registry.create("acc-a", flow_yaml())
    updated = await registry.update("acc-a", saved.flow.id, flow_yaml(name="Renamed"))
    assert updated.version.number == 2
    assert updated.flow.name == "Renamed"
    first = await registry.version("acc-a", saved.flow.id, 1)
    assert first.yaml == flow_yaml()
    current = await registry.get("acc-a", saved.flow.id)
    assert current.version.yaml == flow_yaml(name="Renamed")


async def test_update_with_a_stale_expected_version_conflicts(registry: FlowRegistry) -> None:
    saved = await registry.create("acc-a", flow_yaml())
    await registry.update("acc-a", saved.flow.id, flow_yaml(value="v2"), expected_version=1)
    with pytest.raises(Conflict):
        await registry.update("acc-a", saved.flow.id, flow_yaml(value="v3"), expected_version=1)
    assert (await registry.get("acc-a", saved.flow.id)).flow.current_version == 2


async def test_invalid_update_keeps_the_current_version(registry: FlowRegistry) -> None:
    saved = await registry.create("acc-a", flow_yaml())
    with pytest.raises(DefinitionError):
        await registry.update("acc-a", saved.flow.id, BROKEN)
    assert (await registry.get("acc-a", saved.flow.id)).flow.current_version == 1


async def test_another_account_sees_nothing_and_changes_nothing(registry: FlowRegistry) -> None:
    saved = await registry.create("acc-a", flow_yaml())
    fid = saved.flow.id
    for attempt in (
        registry.get("acc-b", fid),
        registry.update("acc-b", fid, flow_yaml(value="stolen")),
        registry.patch("acc-b", fid, name="stolen"),
        registry.delete("acc-b", fid),
        registry.versions("acc-b", fid),
        registry.version("acc-b", fid, 1),
        registry.diff("acc-b", fid, 1, 1),
        registry.restore("acc-b", fid, 1),
    ):
        with pytest.raises(NotFound):
            await attempt
    assert (await registry.list("acc-b")).items == []
    after = await registry.get("acc-a", fid)
    assert after.flow == saved.flow
    assert after.version == saved.version


async def test_patch_changes_metadata_but_not_the_yaml(registry: FlowRegistry) -> None:
    saved = await registry.create("acc-a", flow_yaml())
    flow = await registry.patch("acc-a", saved.flow.id, tags=["x"], description="new words")
    assert flow.tags == ("x",)
    assert flow.description == "new words"
    assert flow.current_version == 1


async def test_deleted_flow_is_hidden_but_its_versions_remain_in_the_store(
    registry: FlowRegistry, store: Store
) -> None:
    saved = await registry.create("acc-a", flow_yaml())
    await registry.delete("acc-a", saved.flow.id)
    with pytest.raises(NotFound):
        await registry.get("acc-a", saved.flow.id)
    assert (await registry.list("acc-a")).items == []
    pinned = await store.flows.get_version("acc-a", saved.flow.id, 1)
    assert pinned.yaml == flow_yaml()


async def test_list_filters_by_name_description_tags_and_update_time(
    registry: FlowRegistry,
) -> None:
    a = await registry.create("acc-a", flow_yaml(name="Orders", description="nightly sync"))
    b = await registry.create("acc-a", flow_yaml(name="Invoices", description="Monthly run"))
    await registry.patch("acc-a", b.flow.id, tags=["finance"])

    async def names(**filters: Any) -> list[str]:
        page = await registry.list("acc-a", filters=FlowFilters(**filters))
        return [f.name for f in page.items]

    assert await names(name_contains="ORD") == ["Orders"]
    assert await names(description_contains="monthly") == ["Invoices"]
    assert await names(tags=["finance"]) == ["Invoices"]
    b_now = await registry.get("acc-a", b.flow.id)
    assert await names(updated_after=b_now.flow.updated_at) == ["Invoices"]
    assert await names(updated_before=b_now.flow.updated_at) == ["Orders"]
    assert a.flow.id != b.flow.id


async def test_list_pages_follow_the_cursor_newest_first(registry: FlowRegistry) -> None:
    ids = [(await registry.create("acc-a", flow_yaml(name=f"F{i}"))).flow.id for i in range(5)]
    seen: list[str] = []
    cursor: str | None = None
    while True:
        page = await registry.list("acc-a", limit=2, cursor=cursor)
        seen += [f.id for f in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == list(reversed(ids))


async def test_diff_shows_the_changed_lines(registry: FlowRegistry) -> None:
    saved = await registry.create("acc-a", flow_yaml(value="hi"))
    await registry.update("acc-a", saved.flow.id, flow_yaml(value="bye"))
    diff = await registry.diff("acc-a", saved.flow.id, 1, 2)
    assert diff.startswith("--- v1\n+++ v2\n")
    assert "-      values: {greeting: hi}\n" in diff
    assert "+      values: {greeting: bye}\n" in diff
    assert await registry.diff("acc-a", saved.flow.id, 2, 2) == ""


async def test_restore_makes_an_old_version_current_as_a_new_version(
    registry: FlowRegistry, audit: AuditLog
) -> None:
    saved = await registry.create("acc-a", flow_yaml(name="One"))
    await registry.update("acc-a", saved.flow.id, flow_yaml(name="Two"))
    restored = await registry.restore("acc-a", saved.flow.id, 1, expected_version=2)
    assert restored.version.number == 3
    assert restored.version.yaml == flow_yaml(name="One")
    assert restored.flow.name == "One"
    versions = await registry.versions("acc-a", saved.flow.id)
    assert [v.number for v in versions.items] == [3, 2, 1]
    last = (await audited(audit, "acc-a"))[-1]
    assert last.action == "flow.restored"
    assert last.data == {"outcome": "ok", "version": 3, "restored_from": 1}


async def test_validate_reports_warnings_and_errors_without_saving(
    registry: FlowRegistry,
) -> None:
    assert [p for p in await registry.validate(flow_yaml()) if p.severity == "error"] == []
    assert any(p.severity == "error" for p in await registry.validate(BROKEN))
    assert (await registry.list("acc-a")).items == []


async def test_flows_over_the_per_flow_limits_are_refused_and_nothing_is_stored(
    store: Store, audit: AuditLog
) -> None:
    limits = FlowLimits(max_bytes=2000, max_nodes=1, max_script_bytes=100)
    strict = FlowRegistry(store, audit, FlowChecker(limits, workers=1))
    try:
        with pytest.raises(FlowTooLarge):
            await strict.create("acc-a", flow_yaml() + "#" * 2000)
        with pytest.raises(FlowTooLarge):
            await strict.validate(flow_yaml() + "#" * 2000)
        two_nodes = flow_yaml() + "  other:\n    type: set\n"
        with pytest.raises(DefinitionError) as raised:
            await strict.create("acc-a", two_nodes)
        assert [p.path for p in raised.value.errors] == ["nodes"]
        assert (await strict.list("acc-a")).items == []
        saved = await strict.create("acc-a", flow_yaml())
        assert saved.version.number == 1
    finally:
        strict.close()


async def test_restoring_a_version_checks_it_against_todays_limits(
    registry: FlowRegistry, store: Store, audit: AuditLog
) -> None:
    saved = await registry.create("acc-a", flow_yaml() + "#" * 1000)
    await registry.update("acc-a", saved.flow.id, flow_yaml(value="v2"))
    lowered = FlowRegistry(store, audit, FlowChecker(FlowLimits(max_bytes=500)))
    try:
        with pytest.raises(FlowTooLarge):
            await lowered.restore("acc-a", saved.flow.id, 1)
    finally:
        lowered.close()


async def test_validations_run_off_the_event_loop_thread(
    registry: FlowRegistry, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[str] = []
    original = load_module.check_text

    def spy(*args: Any, **kwargs: Any) -> Any:
        seen.append(threading.current_thread().name)
        return original(*args, **kwargs)

    monkeypatch.setattr(load_module, "check_text", spy)
    await registry.validate(flow_yaml())
    await registry.create("acc-a", flow_yaml())
    assert len(seen) == 2
    assert all(name.startswith("flow-check") for name in seen)
