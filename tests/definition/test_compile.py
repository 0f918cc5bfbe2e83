from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from flowrunner.definition import compile_flow, load_flow
from flowrunner.engine import Checkpoint, NodeEvent
from flowrunner.errors import DefinitionError, FlowFailed, NodeFailed


def compiled(text: str, **kw: Any) -> Any:
    return compile_flow(load_flow(text), **kw)


CHAIN = """\
metadata: {name: chain}
nodes:
  first:
    type: set
    params: {values: {greeting: "Hi ${input.name}", n: "${input.n}"}}
    next: {default: second}
  second:
    type: set
    params: {values: {echo: "${results.first.greeting}", prev: "${input.n}"}}
"""


async def test_data_flows_through_input_results_and_shared() -> None:
    result = await compiled(CHAIN).run({"name": "Ada", "n": 2})
    assert result.results["first"] == {"greeting": "Hi Ada", "n": 2}
    assert result.output == {"echo": "Hi Ada", "prev": 2}
    assert result.last_node_id == "second"
    assert result.shared == {
        "name": "Ada",
        "n": 2,
        "greeting": "Hi Ada",
        "echo": "Hi Ada",
        "prev": 2,
        "result": {"echo": "Hi Ada", "prev": 2},
    }


async def test_shared_starts_as_a_copy_of_a_mapping_input_and_empty_otherwise() -> None:
    run_input = {"name": "Ada", "n": 1, "nested": {"k": 1}}
    flow = compiled(CHAIN)
    result = await flow.run(run_input)
    result.shared["nested"]["k"] = 2
    assert run_input == {"name": "Ada", "n": 1, "nested": {"k": 1}}
    other = await flow.run([1, 2])
    assert set(other.shared) == {"greeting", "n", "echo", "prev", "result"}


async def test_one_compiled_flow_serves_concurrent_runs_without_interference() -> None:
    flow = compiled("""\
metadata: {name: concurrent}
nodes:
  a: {type: set, params: {values: {me: "${input.i}"}}, next: {default: pause}}
  pause: {type: delay, params: {duration: 10ms}, next: {default: b}}
  b: {type: set, params: {values: {still_me: "${shared.me}", via: "${results.a.me}"}}}
""")
    results = await asyncio.gather(*(flow.run({"i": i}) for i in range(20)))
    for i, result in enumerate(results):
        assert result.output == {"still_me": i, "via": i}
    again = await flow.run({"i": 99})
    assert again.output == {"still_me": 99, "via": 99}


async def test_an_error_edge_hands_the_error_and_the_failed_input_on() -> None:
    flow = compiled("""\
metadata: {name: errors}
nodes:
  boom:
    type: fail
    params: {message: "bad order ${input.id}"}
    next: {error: report}
  report:
    type: set
    params:
      values:
        failed: "${error.node_id}"
        why: "${error.message}"
        kind: "${error.type}"
        order: "${input.id}"
""")
    result = await flow.run({"id": 7})
    assert result.output == {
        "failed": "boom",
        "why": "bad order 7",
        "kind": "FlowFailed",
        "order": 7,
    }


async def test_a_failure_without_an_error_edge_raises_node_failed() -> None:
    flow = compiled("metadata: {name: f}\nnodes:\n  stop: {type: fail, params: {message: no}}\n")
    with pytest.raises(NodeFailed) as info:
        await flow.run({"x": 1})
    assert info.value.node_id == "stop"
    assert isinstance(info.value.cause, FlowFailed)
    assert info.value.data == {"x": 1}


async def test_batch_items_run_the_node_once_per_item_in_order() -> None:
    flow = compiled("""\
metadata: {name: batch}
nodes:
  each:
    type: set
    params: {values: {last: "${item.id}", label: "#${index}: ${item.name}"}}
    batch: {items: "${input.rows}", strategy: worker_pool, max_parallel: 2}
""")
    rows = [{"id": i, "name": f"row{i}"} for i in range(5)]
    result = await flow.run({"rows": rows})
    assert [o["label"] for o in result.output] == [f"#{i}: row{i}" for i in range(5)]
    assert result.shared["result"] == result.output


async def test_batch_items_that_are_not_a_list_fail_the_node() -> None:
    flow = compiled("""\
metadata: {name: batch}
nodes:
  each: {type: log, params: {message: x}, batch: {items: "${input.rows}"}}
""")
    with pytest.raises(NodeFailed, match=r"batch\.items must be a list, got dict"):
        await flow.run({"rows": {"a": 1}})


async def test_retry_and_timeout_from_yaml_reach_the_engine() -> None:
    flow = compiled("""\
metadata: {name: slow}
nodes:
  slow:
    type: delay
    params: {duration: 1s}
    timeout: 20ms
    retry: {max_retries: 2, wait: 1ms}
""")
    events: list[NodeEvent] = []
    with pytest.raises(NodeFailed, match="timed out"):
        await flow.run(observer=events.append)
    assert [e.attempt for e in events if e.kind == "retrying"] == [2, 3]
    node = flow.engine_flow.nodes()["slow"]
    assert node.timeout == 0.02
    assert node.retry.max_retries == 2


async def test_secrets_are_in_scope_but_never_in_shared_or_results() -> None:
    flow = compiled("""\
metadata: {name: secret}
nodes:
  a: {type: log, params: {message: "token ${secrets.TOKEN}"}}
""")
    events: list[NodeEvent] = []
    result = await flow.run({}, secrets={"TOKEN": "s3cr3t"}, observer=events.append)
    assert [e.message for e in events if e.kind == "log"] == ["token s3cr3t"]
    assert "s3cr3t" not in repr(result.shared) + repr(result.results)
    anonymous = await flow.run({}, observer=events.append)
    assert anonymous.steps == 1
    assert events[-2].message == "token "


async def test_execution_metadata_is_in_scope() -> None:
    flow = compiled("""\
metadata: {name: meta}
nodes:
  a: {type: set, params: {values: {run: "${execution.id}"}}}
""")
    result = await flow.run(execution={"id": "run-42"})
    assert result.output == {"run": "run-42"}


async def test_checkpoints_and_resume_work_through_compiled_flows() -> None:
    flow = compiled(CHAIN)
    seen: list[Checkpoint] = []

    async def keep(cp: Checkpoint) -> None:
        seen.append(cp)

    await flow.run({"name": "Ada", "n": 1}, checkpoint=keep)
    assert [(c.node_id, c.next_node_id) for c in seen] == [("first", "second"), ("second", None)]
    first = seen[0]
    resumed = await flow.run(
        first.output, shared=dict(first.shared), results=dict(first.results), start_at="second"
    )
    assert resumed.output == {"echo": "Hi Ada", "prev": 1}


async def test_hooks_need_the_javascript_sandbox() -> None:
    defn = load_flow("""\
metadata: {name: hooks}
nodes:
  a:
    type: log
    params: {message: x}
    hooks: {post: "return 'next'"}
""")
    with pytest.raises(DefinitionError) as info:
        compile_flow(defn)
    problem = info.value.errors[0]
    assert (problem.path, problem.line, problem.column) == ("nodes.a.hooks", 6, 12)
    assert "hooks need the JavaScript sandbox" in problem.message


def test_compiling_never_changes_the_definition() -> None:
    defn = load_flow(CHAIN)
    before = repr(defn)
    compile_flow(defn)
    compile_flow(defn)
    assert repr(defn) == before


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_sub_flow_recursion_is_a_definition_error(tmp_path: Path) -> None:
    write(
        tmp_path,
        "a.yaml",
        "metadata: {name: a}\nnodes:\n  call_b: {type: flow, params: {path: b.yaml}}\n",
    )
    write(
        tmp_path, "b.yaml", "metadata: {name: b}\nnodes:\n  x: {type: log, params: {message: x}}\n"
    )
    path = tmp_path / "a.yaml"
    defn = load_flow(path.read_text(), source=str(path), base_path=tmp_path)
    # b.yaml changes after a.yaml was validated: compiling still catches the loop.
    write(
        tmp_path,
        "b.yaml",
        "metadata: {name: b}\nnodes:\n  call_a: {type: flow, params: {path: a.yaml}}\n",
    )
    with pytest.raises(DefinitionError) as info:
        compile_flow(defn, base_path=tmp_path)
    messages = [p.message for p in info.value.errors]
    assert any("sub-flow recursion: a.yaml → b.yaml → a.yaml" in m for m in messages)
    assert info.value.errors[0].line == 3


def test_an_invalid_sub_flow_is_reported_at_the_parent_node(tmp_path: Path) -> None:
    write(
        tmp_path,
        "child.yaml",
        "metadata: {name: c}\nnodes:\n  x: {type: log, params: {message: x}}\n",
    )
    parent = write(
        tmp_path,
        "parent.yaml",
        "metadata: {name: p}\nnodes:\n  sub:\n    type: flow\n    params: {path: child.yaml}\n",
    )
    defn = load_flow(parent.read_text(), source=str(parent), base_path=tmp_path)
    write(tmp_path, "child.yaml", "metadata: {name: c}\nnodes:\n  x: {type: nope}\n")
    with pytest.raises(DefinitionError) as info:
        compile_flow(defn, base_path=tmp_path)
    head, inner = info.value.errors[:2]
    assert (head.path, head.line, head.column) == ("nodes.sub.params.path", 5, 20)
    assert "sub-flow 'child.yaml' is invalid: unknown node type 'nope'" in head.message
    assert inner.source is not None
    assert inner.source.endswith("child.yaml")


async def test_resuming_on_an_error_edge_hands_the_error_back() -> None:
    flow = compiled("""\
metadata: {name: resume}
nodes:
  boom: {type: fail, params: {message: "bad ${input.id}"}, next: {error: report}}
  report: {type: set, params: {values: {why: "${error.message}", id: "${input.id}"}}}
""")
    seen: list[Checkpoint] = []

    async def keep(cp: Checkpoint) -> None:
        seen.append(cp)

    await flow.run({"id": 1}, checkpoint=keep)
    failed = seen[0]
    assert (failed.node_id, failed.next_node_id, failed.action) == ("boom", "report", "error")
    resumed = await flow.run(
        {"id": 1},
        start_at="report",
        shared=dict(failed.shared),
        results=dict(failed.results),
        error=failed.error,
        steps=failed.steps,
    )
    assert resumed.output == {"why": "bad 1", "id": 1}
    assert resumed.steps == 2
