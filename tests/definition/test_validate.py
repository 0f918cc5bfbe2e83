"""Every validation check, with the exact line:column it reports."""

from __future__ import annotations

from pathlib import Path

import pytest

from flowrunner.definition import validate_flow
from flowrunner.errors import Problem


def check(text: str, **kw: object) -> list[Problem]:
    return validate_flow(text, **kw)  # type: ignore[arg-type]


def only(problems: list[Problem], severity: str = "error") -> Problem:
    matching = [p for p in problems if p.severity == severity]
    assert len(matching) == 1, problems
    return matching[0]


def where(problem: Problem) -> tuple[str, int | None, int | None]:
    return problem.path, problem.line, problem.column


def test_a_valid_flow_has_no_problems() -> None:
    text = """\
metadata: {name: ok, version: 1.0, start: a}
nodes:
  a: {type: set, params: {values: {x: 1}}, next: {default: b}, timeout: 2s,
      retry: {max_retries: 2, wait: 500ms, backoff: exponential, max_wait: 1m, jitter: 0.5}}
  b: {type: log, params: {message: "${shared.x}"}}
"""
    assert check(text) == []


def test_schema_errors_are_readable_and_located() -> None:
    text = """\
metadata:
  description: no name
nodes:
  a:
    type: log
    params: {message: hi}
    retry: {max_retries: -1, backoff: linear}
    batch: {items: "${input}", strategy: worker_pool}
"""
    problems = {p.path: p for p in check(text)}
    assert where(problems["metadata.name"]) == ("metadata.name", 1, 1)
    assert problems["metadata.name"].message == "missing required key 'name'"
    retries = problems["nodes.a.retry.max_retries"]
    assert (retries.line, retries.column) == (7, 26)
    assert "minimum" in retries.message
    backoff = problems["nodes.a.retry.backoff"]
    assert (backoff.line, backoff.column) == (7, 39)
    assert backoff.message == "'linear' is not one of: fixed, exponential"
    pool = problems["nodes.a.batch.max_parallel"]
    assert (pool.line, pool.column) == (8, 5)
    assert pool.message == "missing required key 'max_parallel'"


def test_wrong_types_say_what_was_expected() -> None:
    text = "metadata: {name: x}\nnodes:\n  a:\n    type: log\n    params: [1]\n"
    problem = only(check(text))
    assert where(problem) == ("nodes.a.params", 5, 13)
    assert problem.message == "expected a mapping, got a list"


def test_unknown_keys_are_warnings_with_did_you_mean() -> None:
    text = """\
metadata: {name: x, descripton: typo}
nodes:
  a:
    type: log
    params: {message: hi}
    nxt: {default: a}
"""
    problems = check(text)
    assert all(p.severity == "warning" for p in problems)
    by_path = {p.path: p for p in problems}
    assert where(by_path["metadata.descripton"]) == ("metadata.descripton", 1, 21)
    assert by_path["metadata.descripton"].hint == "did you mean 'description'?"
    assert where(by_path["nodes.a.nxt"]) == ("nodes.a.nxt", 6, 5)
    assert by_path["nodes.a.nxt"].message == "unknown key 'nxt'"
    assert by_path["nodes.a.nxt"].hint == "did you mean 'next'?"


def test_unknown_node_types_suggest_the_closest_name() -> None:
    text = "metadata: {name: x}\nnodes:\n  a:\n    type: swtich\n"
    problem = only(check(text))
    assert where(problem) == ("nodes.a.type", 4, 11)
    assert problem.message == "unknown node type 'swtich' — did you mean 'switch'?"


def test_unknown_node_types_without_a_close_name_list_the_types() -> None:
    problem = only(check("metadata: {name: x}\nnodes:\n  a: {type: zzzzzz}\n"))
    assert problem.hint is not None
    assert "log" in problem.hint


def test_each_node_types_params_schema_is_checked() -> None:
    text = """\
metadata: {name: x}
nodes:
  a:
    type: log
    params: {level: loud, mesage: hi}
"""
    problems = check(text)
    by_path = {p.path: p for p in problems}
    assert where(by_path["nodes.a.params.message"]) == ("nodes.a.params.message", 5, 5)
    assert by_path["nodes.a.params.message"].severity == "error"
    assert where(by_path["nodes.a.params.level"]) == ("nodes.a.params.level", 5, 21)
    assert by_path["nodes.a.params.level"].severity == "error"
    assert by_path["nodes.a.params.mesage"].severity == "warning"
    assert by_path["nodes.a.params.mesage"].hint == "did you mean 'message'?"


def test_params_holding_expressions_are_not_type_checked_at_load_time() -> None:
    text = """\
metadata: {name: x}
nodes:
  a: {type: set, params: {values: "${input.values}"}}
"""
    assert check(text) == []


def test_bad_durations_are_errors_with_a_hint() -> None:
    text = """\
metadata: {name: x}
nodes:
  a: {type: delay, params: {duration: 5 minutes}, timeout: 1s1m}
"""
    problems = check(text)
    assert [where(p) for p in problems] == [
        ("nodes.a.params.duration", 3, 39),
        ("nodes.a.timeout", 3, 60),
    ]
    assert problems[0].message == "invalid duration '5 minutes'"
    assert problems[0].hint is not None
    assert "1m30s" in problems[0].hint


def test_expression_syntax_errors_are_located_at_the_param() -> None:
    text = """\
metadata: {name: x}
nodes:
  a:
    type: log
    params:
      message: "total: ${input.total"
      level: "${}"
"""
    problems = check(text)
    assert [where(p) for p in problems] == [
        ("nodes.a.params.message", 6, 16),
        ("nodes.a.params.level", 7, 14),
    ]
    assert "unterminated" in problems[0].message
    assert "empty expression" in problems[1].message


def test_batch_items_must_be_an_expression_or_a_list() -> None:
    text = """\
metadata: {name: x}
nodes:
  a: {type: log, params: {message: hi}, batch: {items: input.rows}}
"""
    problem = only(check(text))
    assert where(problem) == ("nodes.a.batch.items", 3, 56)


def test_code_params_are_not_checked_as_expressions() -> None:
    # `switch` has no code params, so borrow a registry type that declares one.
    from flowrunner.nodes.base import DefinedNode, DefinedNodeType
    from flowrunner.plugins import builtin_registry

    class Script(DefinedNode):
        code_params = frozenset({"script"})

    registry = builtin_registry()
    registry.register(DefinedNodeType("script", "test", Script, {"type": "object"}))
    text = 'metadata: {name: x}\nnodes:\n  a: {type: script, params: {script: "`${"}}\n'
    assert check(text, registry=registry) == []


def test_every_problem_is_reported_at_once_sorted_by_position() -> None:
    text = """\
metadata: {name: x}
nodes:
  a: {type: lgo, next: {default: zz}}
  b: {type: log, params: {message: "${"}}
"""
    problems = check(text)
    assert [p.line for p in problems] == sorted(p.line or 0 for p in problems)
    assert len([p for p in problems if p.severity == "error"]) >= 3


@pytest.mark.parametrize(
    ("text", "message"),
    [("", "empty document"), ("- a\n- b\n", "got a list"), ("just text", "got a str")],
)
def test_a_top_level_that_is_not_a_mapping_is_an_error(text: str, message: str) -> None:
    problem = only(check(text))
    assert message in problem.message
    assert (problem.line, problem.column) == (1, 1)


def test_problems_carry_the_source_name() -> None:
    problems = check("nodes: {}\n", source="flows/x.yaml")
    assert [str(p) for p in problems] == [
        "flows/x.yaml:1:1: error: metadata: missing required key 'metadata'",
        "flows/x.yaml:1:8: error: nodes: must have at least one entry",
    ]


def test_a_sub_flow_file_must_exist(tmp_path: Path) -> None:
    text = "metadata: {name: x}\nnodes:\n  a: {type: flow, params: {path: missing.yaml}}\n"
    problem = only(check(text, base_path=tmp_path))
    assert where(problem) == ("nodes.a.params.path", 3, 34)
    assert "not found" in problem.message


def test_a_switch_action_without_an_edge_is_a_warning() -> None:
    text = """\
metadata: {name: x}
nodes:
  route:
    type: switch
    params: {value: "${input}", cases: {a: go, b: stpo}}
    next: {go: done, stop: done}
  done: {type: log, params: {message: x}}
"""
    case, edge = [p for p in check(text) if p.severity == "warning"]
    assert where(case) == ("nodes.route.params.cases.b", 5, 51)
    assert "action 'stpo' has no next edge" in case.message
    # ...and the edge the typo was meant for is never taken.
    assert where(edge) == ("nodes.route.next.stop", 6, 22)
    assert "never returns the action 'stop'" in edge.message
    assert "did you mean 'stpo'?" in edge.message


def test_an_edge_for_an_action_the_node_type_never_returns_is_a_warning() -> None:
    text = """\
metadata: {name: x}
nodes:
  shape:
    type: transform
    params: {script: "return input"}
    next: {success: done, error: done}
  done: {type: log, params: {message: x}, next: {defualt: end}}
  end: {type: wait, params: {duration: 0}}
"""
    success, typo = [p for p in check(text) if p.severity == "warning"]
    assert where(success) == ("nodes.shape.next.success", 6, 12)
    assert "a 'transform' node never returns the action 'success'" in success.message
    assert success.hint == "it returns default, or error when it fails"
    assert where(typo) == ("nodes.done.next.defualt", 7, 50)
    assert "did you mean 'default'?" in typo.message
    assert not [p for p in check(text) if p.severity == "error"]


@pytest.mark.parametrize(
    "pick",
    [
        '{type: condition, params: {condition_script: "return 1"}}',  # a script decides
        '{type: switch, params: {value: 1, cases: {a: "${input.x}"}}}',  # an expression
        "{type: set, params: {values: {}}, hooks: {post: return 1}}",  # a post hook decides
    ],
    ids=["condition", "switch-expression", "post-hook"],
)
def test_nodes_whose_action_is_decided_at_run_time_are_not_warned_about(pick: str) -> None:
    text = f"""\
metadata: {{name: x}}
nodes:
  pick: {pick}
  more: {{type: log, params: {{message: x}}}}
"""
    text = text.replace("}\n  more:", ", next: {whatever: more}}\n  more:", 1)
    problems = check(text)
    assert [p for p in problems if p.severity == "error"] == []
    assert "whatever" in text
    assert [p for p in problems if "never returns" in p.message] == []


def test_sub_flow_errors_and_recursion_are_reported_at_the_calling_node(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(
        "metadata: {name: a}\nnodes:\n  call_b: {type: flow, params: {path: b.yaml}}\n"
    )
    (tmp_path / "b.yaml").write_text(
        "metadata: {name: b}\nnodes:\n  call_a: {type: flow, params: {path: a.yaml}}\n"
    )
    (tmp_path / "bad.yaml").write_text("metadata: {name: c}\nnodes:\n  x: {type: nope}\n")
    source = tmp_path / "a.yaml"
    problem = only(check(source.read_text(), source=str(source), base_path=tmp_path))
    assert where(problem) == ("nodes.call_b.params.path", 3, 39)
    assert problem.message == (
        "sub-flow 'b.yaml' is invalid: sub-flow recursion: a.yaml → b.yaml → a.yaml"
    )
    text = "metadata: {name: p}\nnodes:\n  sub: {type: flow, params: {path: bad.yaml}}\n"
    problem = only(check(text, base_path=tmp_path))
    assert problem.message == "sub-flow 'bad.yaml' is invalid: unknown node type 'nope'"
    assert problem.hint is not None
    assert "bad.yaml:3:13: error: nodes.x.type: unknown node type 'nope'" in problem.hint


def test_without_a_base_directory_sub_flow_files_are_never_looked_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A flow sent to a server must not probe the server's working directory.
    (tmp_path / "child.yaml").write_text("metadata: {name: c}\nnodes:\n  x: {type: fail}\n")
    monkeypatch.chdir(tmp_path)
    text = "metadata: {name: p}\nnodes:\n  sub: {type: flow, params: {path: child.yaml}}\n"
    problem = only(check(text))
    assert where(problem) == ("nodes.sub.params.path", 3, 36)
    assert "loaded without one (base_path)" in problem.message
