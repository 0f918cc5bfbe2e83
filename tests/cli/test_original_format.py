"""Flows written for the original (Go) flowrunner load and run through the CLI as typed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flowrunner.cli.app import app


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


BATCH_WITHOUT_ITEMS = """\
metadata: {name: Batch}
nodes:
  double:
    type: transform
    batch: {strategy: parallel, max_parallel: 2}
    params:
      script: "return {item: item, index: index, twice: item * 2};"
"""


def test_batch_without_items_runs_once_per_item_of_a_list_input(
    runner: CliRunner, tmp_path: Path
) -> None:
    path = write(tmp_path, "batch.yaml", BATCH_WITHOUT_ITEMS)
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 0, result.output
    assert f"{path}:5:5 warning nodes.double.batch: batch without items" in result.output
    result = runner.invoke(app, ["run", str(path), "-i", "[1, 2, 3]", "-o", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["output"] == [
        {"item": 1, "index": 0, "twice": 2},
        {"item": 2, "index": 1, "twice": 4},
        {"item": 3, "index": 2, "twice": 6},
    ]


def test_batch_without_items_on_a_non_list_input_warns_and_runs_once(
    runner: CliRunner, tmp_path: Path
) -> None:
    path = write(
        tmp_path,
        "batch.yaml",
        BATCH_WITHOUT_ITEMS.replace(
            "{item: item, index: index, twice: item * 2}", "{seen: input, item: typeof item}"
        ),
    )
    result = runner.invoke(app, ["run", str(path), "-i", '{"n": 1}', "-o", "json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["output"] == {"seen": {"n": 1}, "item": "undefined"}
    assert "batch without items and the input is a mapping, not a list" in result.output


def test_validate_warns_where_the_original_read_a_value_as_a_boolean(
    runner: CliRunner, tmp_path: Path
) -> None:
    path = write(
        tmp_path,
        "flags.yaml",
        "metadata: {name: Flags}\nnodes:\n  a:\n    type: set\n"
        "    params: {values: {notify: yes, mode: 010}}\n",
    )
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 0, result.output
    assert (
        f"{path}:5:31 warning nodes.a.params.values.notify: 'yes' is text (YAML 1.2); "
        "the original flowrunner read it as the boolean true"
    ) in result.output
    assert f"{path}:5:42 warning nodes.a.params.values.mode: '010' is the number 10" in (
        result.output
    )
    result = runner.invoke(app, ["run", str(path), "-o", "json"])
    assert json.loads(result.stdout)["output"] == {"notify": "yes", "mode": 10}


FAN_OUT = """\
metadata: {name: Fan out}
nodes:
  fan:
    type: split
    next: {default: geo, risk: risk}
  geo:
    type: log
    params: {message: "geo branch ran"}
    next: {default: locate}
  locate:
    type: set
    params: {values: {country: "NL-${input.ip}"}}
    next: {default: merge}
  risk:
    type: set
    params: {values: {score: "${input.amount}"}}
    next: {default: merge}
  merge:
    type: join
    params: {format: FORMAT}
    next: {default: after}
  after:
    type: log
    params: {message: "after: ${shared.country} / ${results.locate.country}"}
"""


@pytest.mark.parametrize(
    ("how", "output"),
    [
        ("object", {"country": "NL-1.2.3.4", "score": 150}),
        ("array", [{"country": "NL-1.2.3.4"}, {"score": 150}]),
        ("map", {"default": {"country": "NL-1.2.3.4"}, "risk": {"score": 150}}),
    ],
)
def test_split_runs_every_branch_once_and_join_combines_them(
    runner: CliRunner, tmp_path: Path, how: str, output: object
) -> None:
    path = write(tmp_path, "fan.yaml", FAN_OUT.replace("FORMAT", how))
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 0, result.output
    assert "(0 errors, 0 warnings)" in result.output
    result = runner.invoke(
        app, ["run", str(path), "-i", '{"ip": "1.2.3.4", "amount": 150}', "-o", "json"]
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["status"] == "completed"
    assert payload["last_node"] == "after"
    assert payload["output"] == output
    # The default edge is a branch like the others, run once (not once more after the split).
    assert result.output.count("geo branch ran") == 1
    # A branch's writes to shared stay in its copy; its nodes' results are the run's.
    assert "after:  / NL-1.2.3.4" in result.output


def test_validate_rejects_branches_that_meet_at_two_joins(
    runner: CliRunner, tmp_path: Path
) -> None:
    path = write(
        tmp_path,
        "two.yaml",
        "metadata: {name: Two joins}\nnodes:\n"
        "  fan: {type: split, next: {a: a, b: b}}\n"
        "  a: {type: log, params: {message: a}, next: {default: j1}}\n"
        "  b: {type: log, params: {message: b}, next: {default: j2}}\n"
        "  j1: {type: join}\n  j2: {type: join}\n",
    )
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 1
    assert "the branches of split 'fan' meet at 2 joins (j1, j2)" in result.output
    assert f"{path}:3:" in result.output
