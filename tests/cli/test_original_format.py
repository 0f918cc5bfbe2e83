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
