"""Stored sub-flow references: found in the account only, by id or exact name, pinned by
time, and cycles refused before they are saved."""

from __future__ import annotations

from datetime import timedelta

import pytest

from flowrunner.definition import load_flow
from flowrunner.errors import DefinitionError, InvalidInput, NotFound
from flowrunner.flows.references import check_references, find_flow, references, version_at
from flowrunner.storage import FlowStore, FlowVersion
from flowrunner.storage.memory import MemoryStore


def leaf(name: str) -> str:
    return f"metadata: {{name: {name}}}\nnodes:\n  a: {{type: set, params: {{values: {{x: 1}}}}}}\n"


def caller(name: str, target: str, version: int | None = None) -> str:
    pin = f", version: {version}" if version is not None else ""
    return (
        f"metadata: {{name: {name}}}\nnodes:\n"
        f"  call: {{type: flow, params: {{flow: {target}{pin}}}}}\n"
    )


@pytest.fixture
async def flows() -> FlowStore:
    store = MemoryStore()
    await store.connect()
    return store.flows


async def save(flows: FlowStore, account: str, name: str, yaml: str) -> str:
    flow = await flows.create(account, name=name)
    await flows.add_version(account, flow.id, yaml=yaml)
    return flow.id


def test_references_lists_each_flow_node_naming_a_stored_flow() -> None:
    definition = load_flow(caller("P", "Child", 2))
    (ref,) = references(definition)
    assert (ref.node_id, ref.path, ref.flow, ref.version) == (
        "call",
        "nodes.call.params.flow",
        "Child",
        2,
    )
    assert references(load_flow(leaf("L"))) == []


async def test_a_flow_is_found_by_id_or_exact_name_in_its_account_only(flows: FlowStore) -> None:
    mine = await save(flows, "acc-a", "Child", leaf("Child"))
    await save(flows, "acc-a", "Child copy", leaf("Child copy"))  # contains the name: no match
    theirs = await save(flows, "acc-b", "Theirs", leaf("Theirs"))
    assert (await find_flow(flows, "acc-a", "Child")).id == mine
    assert (await find_flow(flows, "acc-a", mine)).id == mine
    for ref in ("Theirs", theirs, "child"):
        with pytest.raises(NotFound):
            await find_flow(flows, "acc-a", ref)


async def test_a_name_two_flows_share_must_be_given_as_an_id(flows: FlowStore) -> None:
    await save(flows, "acc-a", "Twin", leaf("Twin"))
    await save(flows, "acc-a", "Twin", leaf("Twin"))
    with pytest.raises(InvalidInput, match="2 flows are named 'Twin'"):
        await find_flow(flows, "acc-a", "Twin")


async def test_the_version_pinned_is_the_one_current_at_the_given_time(flows: FlowStore) -> None:
    flow_id = await save(flows, "acc-a", "C", leaf("C"))
    first = await flows.get_version("acc-a", flow_id, 1)
    await flows.add_version("acc-a", flow_id, yaml=leaf("C") + "# v2\n")
    flow = await flows.get("acc-a", flow_id)
    assert await version_at(flows, flow, first.created_at) == 1
    assert await version_at(flows, flow, first.created_at + timedelta(days=1)) == 2
    with pytest.raises(NotFound, match="no version yet"):
        await version_at(flows, flow, first.created_at - timedelta(days=1))


async def test_a_cycle_through_a_pinned_old_version_is_refused(flows: FlowStore) -> None:
    a = await save(flows, "acc-a", "A", leaf("A"))
    await save(flows, "acc-a", "B", caller("B", "A"))
    # A → B → A: the save that closes the loop is refused at the flow node's line.
    with pytest.raises(DefinitionError) as raised:
        await check_references(flows, "acc-a", load_flow(caller("A", "B")), flow_id=a, name="A")
    (problem,) = raised.value.problems
    assert problem.message == "sub-flow recursion: A → B → A"
    assert (problem.path, problem.line, problem.column) == ("nodes.call.params.flow", 3, 37)
    # C pins B's version 1, which calls A's current version: A → C → B → A is a loop too.
    c = await save(flows, "acc-a", "C", caller("C", "B", 1))
    with pytest.raises(DefinitionError, match="A → C → B → A"):
        await check_references(flows, "acc-a", load_flow(caller("A", c)), flow_id=a, name="A")


async def test_a_new_flow_naming_itself_is_refused(flows: FlowStore) -> None:
    with pytest.raises(DefinitionError, match="'Self' runs itself"):
        await check_references(
            flows, "acc-a", load_flow(caller("Self", "Self")), flow_id=None, name="Self"
        )


async def test_one_save_reads_each_referenced_version_once_however_often_it_is_named(
    flows: FlowStore,
) -> None:
    await save(flows, "acc-a", "Leaf", leaf("Leaf"))
    await save(flows, "acc-a", "Mid", caller("Mid", "Leaf"))
    reads: list[tuple[str, int]] = []
    real = flows.get_version

    async def counted(account_id: str, flow_id: str, number: int) -> FlowVersion:
        reads.append((flow_id, number))
        return await real(account_id, flow_id, number)

    flows.get_version = counted  # type: ignore[method-assign]
    many = (
        "metadata: {name: Many}\nnodes:\n"
        + "".join(
            f"  c{i}: {{type: flow, params: {{flow: Mid}}, next: {{default: c{i + 1}}}}}\n"
            for i in range(50)
        )
        + "  c50: {type: flow, params: {flow: Mid}}\n"
    )
    await check_references(flows, "acc-a", load_flow(many), flow_id=None, name="Many")
    assert len(reads) == 2  # Mid's version, then Leaf's: once each for 51 nodes
