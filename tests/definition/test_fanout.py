"""Where a split's branches meet, checked at load time and wired at compile time."""

from __future__ import annotations

import pytest

from flowrunner.definition import compile_flow, load_flow, validate_flow
from flowrunner.errors import NodeFailed

NESTED = """\
metadata: {name: Nested}
nodes:
  outer: {type: split, next: {a: inner, b: b}}
  inner: {type: split, next: {x: x, y: y}}
  x: {type: set, params: {values: {x: 1}}, next: {default: inner_join}}
  y: {type: set, params: {values: {y: 2}}, next: {default: inner_join}}
  inner_join: {type: join, params: {format: object}, next: {default: outer_join}}
  b: {type: set, params: {values: {b: 3}}, next: {default: outer_join}}
  outer_join: {type: join, params: {format: map}}
"""


async def test_a_nested_split_meets_at_its_own_join_inside_the_outer_branch() -> None:
    definition = load_flow(NESTED)
    assert definition.warnings == []
    result = await compile_flow(definition).run({})
    assert result.output == {"a": {"x": 1, "y": 2}, "b": {"b": 3}}
    assert result.last_node_id == "outer_join"


def test_a_split_without_branches_is_an_error() -> None:
    problems = validate_flow(
        "metadata: {name: S}\nnodes:\n  s: {type: split, next: {error: e}}\n"
        "  e: {type: log, params: {message: m}}\n"
    )
    assert [p.message for p in problems if p.severity == "error"] == [
        "a split needs at least one next edge besides error: each one is a branch"
    ]


def test_a_split_cannot_be_a_batch() -> None:
    problems = validate_flow(
        "metadata: {name: S}\nnodes:\n  s: {type: split, batch: {items: [1]}, next: {a: a}}\n"
        "  a: {type: log, params: {message: m}}\n"
    )
    assert "a split cannot be a batch node" in [p.message for p in problems]


async def test_join_object_needs_mapping_outputs() -> None:
    flow = compile_flow(
        load_flow(
            "metadata: {name: S}\nnodes:\n  s: {type: split, next: {a: a, b: b}}\n"
            "  a: {type: log, params: {message: m}, next: {default: j}}\n"
            "  b: {type: log, params: {message: m}, next: {default: j}}\n"
            "  j: {type: join, params: {format: object}}\n"
        )
    )
    with pytest.raises(NodeFailed, match="format object merges mappings, and branch 'a'"):
        await flow.run([1])


async def test_a_failing_branch_fails_the_split_and_its_error_edge_catches_it() -> None:
    flow = compile_flow(
        load_flow(
            "metadata: {name: S}\nnodes:\n"
            "  s: {type: split, next: {a: a, b: b, error: handle}}\n"
            "  a: {type: delay, params: {duration: 60}, next: {default: j}}\n"
            "  b: {type: fail, params: {message: no stock}, next: {default: j}}\n"
            "  j: {type: join}\n"
            '  handle: {type: set, params: {values: {failed: "${error.node_id}",'
            ' why: "${error.message}"}}}\n'
        )
    )
    result = await flow.run({})
    assert result.last_node_id == "handle"
    assert result.output["failed"] == "s"
    assert "node 'b' failed: no stock" in result.output["why"]


def test_a_join_no_split_leads_to_is_a_warning() -> None:
    problems = validate_flow(
        "metadata: {name: J}\nnodes:\n  a: {type: log, params: {message: m}, next: {default: j}}\n"
        "  j: {type: join}\n"
    )
    assert [(p.severity, p.path, p.line) for p in problems] == [("warning", "nodes.j.type", 4)]
    assert "no split's branches meet at join 'j'" in problems[0].message
