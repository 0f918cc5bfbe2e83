"""Property tests: whatever text comes in, loading fails only with a DefinitionError whose
problems are complete, and compiling what loads fails only with a DefinitionError."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flowrunner.definition import compile_flow, load_flow, validate_flow
from flowrunner.errors import DefinitionError

VALID = """\
metadata:
  name: Fuzz
  start: fetch
nodes:
  fetch:
    type: set
    params: {values: {rows: "${input.rows}", label: "n=${input.n}"}}
    retry: {max_retries: 2, wait: 10ms, backoff: exponential}
    next: {default: each, error: alert}
  each:
    type: log
    params: {message: "${item}", level: info}
    batch: {items: "${input.rows}", strategy: worker_pool, max_parallel: 2}
    timeout: 2s
    next: {default: route}
  route:
    type: switch
    params: {value: "${shared.kind}", cases: {a: alert}, default: done}
    next: {alert: alert, done: done}
  alert: {type: fail, params: {message: "failed: ${error.message}"}}
  done: {type: delay, params: {duration: 1ms}}
"""

TOKENS = [
    "",
    " ",
    "\n",
    ":",
    "- ",
    "{",
    "}",
    "[",
    "]",
    "${",
    "}",
    "&a",
    "*a",
    "!!str",
    "'",
    '"',
    "\t",
    "type",
    "next",
    "default",
    "nodes",
    "metadata",
    "batch",
    "items",
    "1s1m",
    "-1",
    "null",
    "~",
    "<<: *a",
    "? ",
    "%YAML 1.2\n---\n",
    "---\n",
    "...",
    "\\",
    "#",
    "|",
    ">",
    "\x00",
    "\ufeff",
    "é",
]


def assert_complete(error: DefinitionError) -> None:
    assert error.errors, "a DefinitionError must hold at least one error"
    for problem in error.problems:
        assert problem.path
        assert problem.message
        assert (problem.line or 0) >= 1, problem
        assert (problem.column or 0) >= 1, problem


def load_never_crashes(text: str) -> None:
    problems = validate_flow(text)
    failure: DefinitionError | None = None
    try:
        defn = load_flow(text)
    except DefinitionError as error:
        failure = error
    if failure is not None:
        assert_complete(failure)
        assert [p for p in problems if p.severity == "error"] == failure.errors
        return
    assert all(p.severity == "warning" for p in problems)
    try:
        compile_flow(defn)
    except DefinitionError as error:
        failure = error
    assert failure is None or failure.errors


@st.composite
def mutated(draw: st.DrawFn) -> str:
    text = VALID
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(text)))
        kind = draw(st.sampled_from(["delete", "insert", "token", "dup_line", "drop_line"]))
        if kind == "delete":
            text = text[:at] + text[at + draw(st.integers(1, 12)) :]
        elif kind == "insert":
            text = text[:at] + draw(st.text(max_size=6)) + text[at:]
        elif kind == "token":
            text = text[:at] + draw(st.sampled_from(TOKENS)) + text[at:]
        else:
            lines = text.splitlines(keepends=True)
            i = draw(st.integers(0, len(lines) - 1))
            lines[i : i + 1] = [lines[i]] * (2 if kind == "dup_line" else 0)
            text = "".join(lines)
    return text


FUZZ = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(st.text(max_size=300))
def test_random_text_only_ever_raises_definition_error(text: str) -> None:
    load_never_crashes(text)


@FUZZ
@given(mutated())
def test_mutated_valid_flows_only_ever_raise_definition_error(text: str) -> None:
    load_never_crashes(text)


def test_the_unmutated_flow_loads() -> None:
    assert load_flow(VALID).warnings == []
