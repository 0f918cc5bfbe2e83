"""Each control node, run end to end through load_flow + compile_flow."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from flowrunner.definition import compile_flow, load_flow
from flowrunner.engine import NodeEvent, RunResult
from flowrunner.errors import FlowFailed, NodeFailed


async def run(
    text: str,
    run_input: Any = None,
    *,
    base_path: Path | None = None,
    events: list[NodeEvent] | None = None,
) -> RunResult:
    defn = load_flow(text, base_path=base_path)
    flow = compile_flow(defn, base_path=base_path)
    return await flow.run(run_input, observer=events.append if events is not None else None)


@pytest.mark.parametrize("node_type", ["delay", "wait"])
async def test_delay_waits_for_a_duration_and_passes_its_input_on(node_type: str) -> None:
    started = time.perf_counter()
    result = await run(
        f"""\
metadata: {{name: d}}
nodes:
  pause: {{type: {node_type}, params: {{duration: "${{input.wait}}"}}}}
""",
        {"wait": "50ms"},
    )
    assert time.perf_counter() - started >= 0.05
    assert result.output == {"wait": "50ms"}


async def test_delay_until_an_iso_time(monkeypatch: pytest.MonkeyPatch) -> None:
    # Waits are counted as well as timed: "no wait" is then exact, not a short time.
    real_sleep = asyncio.sleep
    waits: list[float] = []

    async def counted_sleep(seconds: float, result: Any = None) -> Any:
        if seconds > 0:
            waits.append(seconds)
        return await real_sleep(seconds, result)

    monkeypatch.setattr(asyncio, "sleep", counted_sleep)
    until = (datetime.now(UTC) + timedelta(milliseconds=80)).isoformat()
    started = time.perf_counter()
    await run(
        "metadata: {name: d}\nnodes:\n  p: {type: delay, params: {until: '${input}'}}\n", until
    )
    assert time.perf_counter() - started >= 0.06
    waits.clear()
    await run("metadata: {name: d}\nnodes:\n  p: {type: delay, params: {until: '2001-01-01'}}\n")
    assert waits == []  # a time already past waits not at all
    await run("metadata: {name: d}\nnodes:\n  p: {type: delay, params: {duration: 1ms}}\n")
    assert waits == [0.001]  # while any wait would have been counted


async def test_delay_with_a_bad_runtime_duration_fails_the_node() -> None:
    with pytest.raises(NodeFailed, match="invalid duration 'soon'"):
        await run(
            "metadata: {name: d}\nnodes:\n  p: {type: delay, params: {duration: '${input}'}}\n",
            "soon",
        )


def test_delay_needs_a_duration_or_until() -> None:
    problems = [
        p.message for p in _errors("metadata: {name: d}\nnodes:\n  p: {type: delay, params: {}}\n")
    ]
    assert problems == ["needs one of the keys: duration, until"]


async def test_log_emits_a_log_event_at_its_level_and_passes_input_on() -> None:
    events: list[NodeEvent] = []
    result = await run(
        """\
metadata: {name: l}
nodes:
  say: {type: log, params: {message: "order ${input.id}: ${input}", level: warn}}
""",
        {"id": 3},
        events=events,
    )
    logs = [e for e in events if e.kind == "log"]
    assert [(e.node_id, e.level, e.message) for e in logs] == [
        ("say", "warning", 'order 3: {"id":3}')
    ]
    assert result.output == {"id": 3}


async def test_set_merges_values_into_shared_and_outputs_them() -> None:
    result = await run(
        """\
metadata: {name: s}
nodes:
  s: {type: set, params: {values: {count: "${input.n}", tags: [a, "${input.tag}"]}}}
""",
        {"n": 4, "tag": "b"},
    )
    assert result.output == {"count": 4, "tags": ["a", "b"]}
    assert result.shared["count"] == 4
    assert result.shared["tags"] == ["a", "b"]


SWITCH = """\
metadata: {name: sw}
nodes:
  route:
    type: switch
    params:
      value: "${input.kind}"
      cases: {"1": one, big: large, "true": yes}
      %s
    next: {one: first, large: second, yes: third, default: fallback}
  first: {type: set, params: {values: {went: first}}}
  second: {type: set, params: {values: {went: second}}}
  third: {type: set, params: {values: {went: third}}}
  fallback: {type: set, params: {values: {went: fallback}}}
"""


@pytest.mark.parametrize(
    ("kind", "went"),
    [
        (1, "first"),
        ("1", "first"),
        ("big", "second"),
        (True, "third"),
        ("other", "fallback"),
        (None, "fallback"),
    ],
)
async def test_switch_routes_by_the_matching_case(kind: object, went: str) -> None:
    result = await run(SWITCH % "", {"kind": kind})
    assert result.output == {"went": went}
    assert result.results["route"] == {"kind": kind}


async def test_switch_default_param_names_the_fallback_action() -> None:
    result = await run(
        SWITCH % "default: big_one\n      ".replace("big_one", "large"), {"kind": "zzz"}
    )
    assert result.output == {"went": "second"}


async def test_an_action_without_an_edge_ends_the_flow_and_is_recorded() -> None:
    result = await run(
        """\
metadata: {name: sw}
nodes:
  route: {type: switch, params: {value: "${input}", cases: {a: stop_here}}}
""",
        "a",
    )
    assert result.action == "stop_here"
    assert result.last_node_id == "route"


async def test_fail_ends_the_run_with_its_message() -> None:
    with pytest.raises(NodeFailed) as info:
        await run(
            "metadata: {name: f}\nnodes:\n  f: {type: fail, params: "
            "{message: 'order ${input.id} rejected'}}\n",
            {"id": 42},
        )
    assert isinstance(info.value.cause, FlowFailed)
    assert str(info.value) == "node 'f' failed: order 42 rejected"


async def test_flow_runs_a_sub_flow_sharing_shared(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "child.yaml").write_text("""\
metadata: {name: child}
nodes:
  double: {type: set, params: {values: {doubled: "${input.n}", parent_saw: "${shared.tag}"}},
           next: {default: decide}}
  decide: {type: switch, params: {value: "${input.doubled}", cases: {"5": five}}}
""")
    events: list[NodeEvent] = []
    result = await run(
        """\
metadata: {name: parent}
nodes:
  tag: {type: set, params: {values: {tag: parent-tag}}, next: {default: call}}
  call:
    type: flow
    params: {path: sub/child.yaml, input: {n: "${shared.n}"}}
    next: {five: after}
  after: {type: set, params: {values: {got: "${input.doubled}", sub: "${results.call}"}}}
""",
        {"n": 5},
        base_path=tmp_path,
        events=events,
    )
    assert result.results["call"] == {"doubled": 5, "parent_saw": "parent-tag"}
    assert result.output["got"] == 5
    assert result.shared["doubled"] == 5  # the sub-flow wrote into the same shared dict
    nested = [(e.kind, e.flow_path, e.node_id) for e in events if e.flow_path]
    assert ("finished", ("call",), "double") in nested
    assert ("finished", ("call",), "decide") in nested


async def test_a_sub_flow_file_sees_the_run_s_secrets(tmp_path: Path) -> None:
    (tmp_path / "child.yaml").write_text("""\
metadata: {name: child}
nodes:
  use: {type: set, params: {values: {auth: "Bearer ${secrets.TOKEN}"}}}
""")
    text = """\
metadata: {name: parent}
nodes:
  call: {type: flow, params: {path: child.yaml}}
"""
    flow = compile_flow(load_flow(text, base_path=tmp_path), base_path=tmp_path)
    result = await flow.run({}, secrets={"TOKEN": "t0k"})
    assert result.output == {"auth": "Bearer t0k"}
    assert (await flow.run({})).output == {"auth": "Bearer "}  # a run given none has none


def _errors(text: str) -> list[Any]:
    from flowrunner.definition import validate_flow

    return [p for p in validate_flow(text) if p.severity == "error"]
