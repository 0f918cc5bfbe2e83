"""Per-flow limits: the text's bytes, the node count, one script's bytes."""

from __future__ import annotations

import pytest

from flowrunner.definition import load_flow, validate_flow
from flowrunner.definition.limits import FlowLimits
from flowrunner.errors import DefinitionError, FlowTooLarge


def chain(count: int) -> str:
    lines = ["metadata: {name: Chain}", "nodes:"]
    for i in range(count):
        nxt = f", next: {{default: n{i + 1}}}" if i < count - 1 else ""
        lines.append(f"  n{i}: {{type: set, params: {{values: {{v: {i}}}}}{nxt}}}")
    return "\n".join(lines) + "\n"


def test_a_text_over_the_byte_limit_is_refused_before_it_is_parsed() -> None:
    text = chain(3) + "# é" * 200  # multi-byte characters count as their UTF-8 bytes
    limit = len(text.encode()) - 1
    with pytest.raises(FlowTooLarge) as raised:
        validate_flow(text + "\n: not yaml [", limits=FlowLimits(max_bytes=limit))
    assert raised.value.limit == limit
    assert raised.value.size > limit
    assert raised.value.code == "payload_too_large"
    assert f"over the limit of {limit} bytes" in str(raised.value)
    assert load_flow(text, limits=FlowLimits(max_bytes=limit + 1)).name == "Chain"


def test_too_many_nodes_is_one_problem_at_the_nodes_key_and_nothing_else_is_checked() -> None:
    text = chain(6).replace("type: set", "type: no.such.type")
    problems = validate_flow(text, limits=FlowLimits(max_nodes=5))
    assert [(p.path, p.line, p.severity) for p in problems] == [("nodes", 2, "error")]
    assert "6 nodes, over the limit of 5" in problems[0].message
    with pytest.raises(DefinitionError):
        load_flow(chain(6), limits=FlowLimits(max_nodes=5))
    assert len(load_flow(chain(5), limits=FlowLimits(max_nodes=5)).nodes) == 5


def test_a_script_or_hook_over_the_size_limit_is_a_problem_at_its_path() -> None:
    long_code = "return 1; " + "x" * 200
    text = (
        "metadata: {name: S}\n"
        "nodes:\n"
        f"  t: {{type: transform, params: {{script: '{long_code}'}}, "
        f"hooks: {{prep: '{long_code}', post: 'return null'}}}}\n"
    )
    problems = validate_flow(text, limits=FlowLimits(max_script_bytes=100))
    errors = sorted((p.path, p.message) for p in problems if p.severity == "error")
    assert [path for path, _ in errors] == ["nodes.t.hooks.prep", "nodes.t.params.script"]
    assert all("over the limit of 100 bytes" in message for _, message in errors)


def test_no_limits_is_the_default_for_flows_loaded_outside_the_api() -> None:
    assert len(load_flow(chain(50)).nodes) == 50
