"""The graph checks: next targets, the start node rules, reachability."""

from __future__ import annotations

import pytest

from tests.definition.test_validate import check, only, where


def test_next_targets_must_exist() -> None:
    text = """\
metadata: {name: x, start: fetch}
nodes:
  fetch:
    type: log
    params: {message: hi}
    next: {default: transfrom, error: nowhere}
  transform: {type: log, params: {message: hi}}
"""
    problems = [p for p in check(text) if p.severity == "error"]
    assert [where(p) for p in problems] == [
        ("nodes.fetch.next.default", 6, 21),
        ("nodes.fetch.next.error", 6, 39),
    ]
    assert problems[0].message == (
        "next 'default' points to unknown node 'transfrom' — did you mean 'transform'?"
    )
    assert "nowhere" in problems[1].message


def test_unreachable_nodes_are_warnings() -> None:
    text = """\
metadata: {name: x, start: a}
nodes:
  a: {type: log, params: {message: hi}}
  orphan: {type: log, params: {message: hi}, next: {default: a}}
"""
    problem = only(check(text), "warning")
    assert where(problem) == ("nodes.orphan", 4, 3)
    assert "unreachable" in problem.message


@pytest.mark.parametrize(
    ("nodes", "message"),
    [
        (
            "  a: {type: log, params: {message: x}, next: {default: b}}\n"
            "  b: {type: log, params: {message: x}, next: {default: a}}\n",
            "every node is the target of some next",
        ),
        (
            "  a: {type: log, params: {message: x}}\n  b: {type: log, params: {message: x}}\n",
            "cannot tell the start node: 'a', 'b' are not the target of any next",
        ),
    ],
)
def test_without_a_single_start_candidate_metadata_start_is_suggested(
    nodes: str, message: str
) -> None:
    problem = only(check("metadata: {name: x}\nnodes:\n" + nodes))
    assert where(problem) == ("nodes", 2, 1)
    assert message in problem.message
    assert problem.hint is not None
    assert "metadata.start" in problem.hint


def test_metadata_start_picks_the_start_and_must_exist() -> None:
    text = """\
metadata: {name: x, start: fetc}
nodes:
  fetch: {type: log, params: {message: x}}
"""
    problem = only(check(text))
    assert where(problem) == ("metadata.start", 1, 28)
    assert problem.message == "start node 'fetc' does not exist — did you mean 'fetch'?"


def test_when_every_node_is_a_target_the_nodes_that_reach_all_others_are_named() -> None:
    # Two loops: a <-> b, then c <-> d after a. Only a or b can start it and reach every node.
    text = """\
metadata: {name: x}
nodes:
  c: {type: log, params: {message: x}, next: {default: d}}
  d: {type: log, params: {message: x}, next: {default: c}}
  a: {type: log, params: {message: x}, next: {default: b, error: c}}
  b: {type: log, params: {message: x}, next: {default: a}}
"""
    problem = only(check(text))
    assert problem.message.endswith(
        "candidates (nodes every other node can be reached from): 'a', 'b'"
    )
    assert problem.hint == "set metadata.start to one of them, e.g. start: a"


def test_end_is_a_reserved_target_and_a_near_miss_suggests_it() -> None:
    text = """\
metadata: {name: x}
nodes:
  a: {type: log, params: {message: x}, next: {default: END, error: end}}
"""
    problem = only(check(text))
    assert where(problem) == ("nodes.a.next.error", 3, 68)
    assert "unknown node 'end' — did you mean 'END'?" in problem.message
