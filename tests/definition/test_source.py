from __future__ import annotations

import pytest

from flowrunner.definition.source import MAX_DEPTH, SourceError, dotted, parse_yaml

TEXT = """\
metadata:
  name: Demo
nodes:
  fetch:
    type: log
    params: {message: hi, list: [a, "b"]}
    next:
      error: alert
"""


def test_every_value_and_key_has_its_one_based_position() -> None:
    parsed = parse_yaml(TEXT)
    assert parsed.data["nodes"]["fetch"]["next"] == {"error": "alert"}
    pos = parsed.positions
    assert pos.values[("metadata", "name")] == (2, 9)
    assert pos.keys[("nodes", "fetch")] == (4, 3)
    assert pos.values[("nodes", "fetch", "type")] == (5, 11)
    assert pos.values[("nodes", "fetch", "params", "message")] == (6, 23)
    assert pos.values[("nodes", "fetch", "params", "list", 1)] == (6, 37)
    assert pos.keys[("nodes", "fetch", "next", "error")] == (8, 7)
    assert pos.values[("nodes", "fetch", "next", "error")] == (8, 14)


def test_a_missing_path_falls_back_to_its_nearest_ancestor() -> None:
    pos = parse_yaml(TEXT).positions
    assert pos.value(("nodes", "fetch", "retry", "wait")) == (5, 5)
    assert pos.key(("nodes", "fetch", "nope")) == (5, 5)


def test_duplicate_keys_are_reported_at_the_second_one_and_the_first_is_kept() -> None:
    text = "metadata: {name: a}\nnodes:\n  a: {type: log}\n  a: {type: set}\n"
    parsed = parse_yaml(text)
    assert parsed.data["nodes"] == {"a": {"type": "log"}}
    [problem] = parsed.problems
    assert (problem.line, problem.column) == (4, 3)
    assert problem.path == "nodes.a"
    assert "duplicate key 'a'" in problem.message
    assert "line 3" in problem.message


def test_yaml_syntax_errors_carry_the_marks_position() -> None:
    with pytest.raises(SourceError) as info:
        parse_yaml("metadata:\n  name: [unclosed\nnodes: {}\n")
    problem = info.value.problem
    assert problem.message.startswith("YAML syntax error")
    assert problem.line == 3


def test_an_unclosed_quote_is_reported_where_it_starts() -> None:
    with pytest.raises(SourceError) as info:
        parse_yaml('metadata: {name: a}\nnodes:\n  a:\n    type: "log\n    next: {}\n')
    problem = info.value.problem
    assert problem.message == (
        "YAML syntax error: the quoted scalar that starts at 4:11 is never closed"
    )
    assert (problem.line, problem.column) == (4, 11)
    assert problem.hint is not None
    assert "end of the file (line 6)" in problem.hint


def test_a_syntax_error_inside_a_construct_names_where_it_began() -> None:
    with pytest.raises(SourceError) as info:
        parse_yaml("metadata: {name: a\nnodes: {}\n")
    problem = info.value.problem
    assert problem.line == 2  # where the parser gave up
    assert "in the flow mapping that starts at 1:11" in problem.message


def test_timestamps_stay_text_and_non_string_keys_become_text() -> None:
    data = parse_yaml("when: 2024-01-02T03:04:05Z\n1: one\ntrue: yes\n").data
    assert data == {"when": "2024-01-02T03:04:05Z", "1": "one", "true": "yes"}


def test_merge_keys_and_aliases_are_resolved() -> None:
    data = parse_yaml("base: &b {x: 1}\nother:\n  <<: *b\n  y: 2\n").data
    assert data["other"] == {"x": 1, "y": 2}


def test_alias_bombs_are_stopped() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        prev = f"*a{i - 1}"
        lines.append(f"a{i}: &a{i} [{', '.join([prev] * 10)}]")
    with pytest.raises(SourceError, match="too large"):
        parse_yaml("\n".join(lines))


def test_absurd_nesting_is_a_problem_not_a_crash() -> None:
    with pytest.raises(SourceError, match="nested deeper"):
        parse_yaml("[" * (MAX_DEPTH + 5) + "]" * (MAX_DEPTH + 5))


def test_unknown_tags_are_problems_with_a_position() -> None:
    with pytest.raises(SourceError) as info:
        parse_yaml("a: !!python/object:os.system x\n")
    assert info.value.problem.line == 1


def test_an_empty_document_is_none() -> None:
    assert parse_yaml("# only a comment\n").data is None


def test_paths_are_dotted_with_bracketed_indices() -> None:
    assert dotted(("nodes", "a", "next", "error")) == "nodes.a.next.error"
    assert dotted(("metadata", "webhooks", 0, "url")) == "metadata.webhooks[0].url"
    assert dotted(()) == "(document)"


def test_scalars_follow_yaml_1_2_like_the_original() -> None:
    data = parse_yaml("a: no\nb: on\nc: yes\nd: true\ne: False\nf: 1:30\nh: 1.5\n").data
    assert data == {"a": "no", "b": "on", "c": "yes", "d": True, "e": False, "f": "1:30", "h": 1.5}


def test_a_recursive_alias_is_a_problem() -> None:
    with pytest.raises(SourceError, match="recursive alias"):
        parse_yaml("a: &a [1, *a]\n")
