"""``flow_outline``: what the dashboard draws, read from the YAML alone."""

from __future__ import annotations

import pytest

from flowrunner.definition.outline import EdgeOutline, flow_outline
from flowrunner.errors import InvalidInput
from tests.e2e.dashboard_flows import BRANCHY


def test_outline_has_every_node_in_file_order_with_its_badges() -> None:
    outline = flow_outline(BRANCHY)
    assert outline.name == "Order triage"
    assert [n.id for n in outline.nodes] == ["check", "route", "notify", "archive", "alert"]
    check, _, notify, *_ = outline.nodes
    assert (check.type, check.retries, check.batch, check.line) == ("transform", 2, None, 5)
    assert (notify.batch, notify.retries) == ("parallel", 0)


def test_outline_edges_carry_their_action_including_error_and_end() -> None:
    edges = flow_outline(BRANCHY).edges
    assert EdgeOutline("check", "alert", "error") in edges
    assert EdgeOutline("route", "notify", "true") in edges
    assert EdgeOutline("notify", "END", "default") in edges
    assert len(edges) == 5


def test_start_is_metadata_start_else_the_one_node_nothing_points_to() -> None:
    assert flow_outline(BRANCHY).start == "check"
    named = "metadata: {name: x, start: b}\nnodes:\n  a: {type: set}\n  b: {type: set}\n"
    assert flow_outline(named).start == "b"
    ambiguous = "metadata: {name: x}\nnodes:\n  a: {type: set}\n  b: {type: set}\n"
    assert flow_outline(ambiguous).start is None


def test_a_node_an_agent_runs_as_a_tool_is_not_a_start() -> None:
    text = (
        "metadata: {name: x}\nnodes:\n"
        "  think: {type: agent, params: {tools: [{node: lookup}, {script: x}, nope]}}\n"
        "  lookup: {type: store}\n"
    )
    assert flow_outline(text).start == "think"


def test_a_batch_without_a_strategy_is_serial_and_odd_values_do_not_break_it() -> None:
    text = (
        "metadata: {name: x}\nnodes:\n"
        "  a: {type: set, batch: {items: [1]}, retry: {max_retries: yes}, timeout: 5s}\n"
        "  b: notanode\n"
    )
    a, b = flow_outline(text).nodes
    assert (a.batch, a.retries, a.timeout) == ("serial", 0, "5s")
    assert (b.type, b.retries) == ("?", 0)


@pytest.mark.parametrize("text", ["a: [", "- just\n- a list\n"])
def test_text_that_is_not_a_yaml_mapping_is_invalid_input(text: str) -> None:
    with pytest.raises(InvalidInput):
        flow_outline(text)
