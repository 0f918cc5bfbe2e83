from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flowrunner.cli.app import app

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

GOOD = """\
metadata: {name: Greeter}
nodes:
  greet:
    type: set
    params:
      values: {greeting: "Hello, ${input.name}!"}
    next: {default: say}
  say:
    type: log
    params: {message: "${shared.greeting}"}
"""

BAD = """\
metadata: {name: Broken}
nodes:
  first:
    type: lgo
    next: {default: nowhere}
"""

FAILING = """\
metadata: {name: Failing}
nodes:
  start:
    type: set
    params: {values: {order: 42}}
    next: {default: stop}
  stop:
    type: fail
    params: {message: "order ${shared.order} rejected"}
"""


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_validate_accepts_a_good_flow(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(app, ["validate", str(write(tmp_path, "good.yaml", GOOD))])
    assert result.exit_code == 0, result.output
    assert "valid" in result.output


def test_validate_reports_every_problem_with_its_position(
    runner: CliRunner, tmp_path: Path
) -> None:
    path = write(tmp_path, "bad.yaml", BAD)
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 1
    assert f"{path}:4:" in result.output  # the unknown type, on its line
    assert "did you mean 'log'" in result.output
    assert f"{path}:5:" in result.output  # the dangling next target
    assert "nowhere" in result.output


def test_run_prints_the_result_as_json(runner: CliRunner, tmp_path: Path) -> None:
    path = write(tmp_path, "good.yaml", GOOD)
    result = runner.invoke(
        app, ["run", str(path), "--input", '{"name": "Ada"}', "--output", "json"]
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["status"] == "completed"
    assert payload["last_node"] == "say"
    assert "Hello, Ada!" in result.output  # the log line, in the progress view


def test_run_reads_input_from_a_file(runner: CliRunner, tmp_path: Path) -> None:
    path = write(tmp_path, "good.yaml", GOOD)
    data = write(tmp_path, "input.json", '{"name": "Grace"}')
    result = runner.invoke(app, ["run", str(path), "-i", f"@{data}", "-o", "json"])
    assert result.exit_code == 0, result.output
    assert "Hello, Grace!" in result.output


def test_run_rejects_input_that_is_not_json(runner: CliRunner, tmp_path: Path) -> None:
    path = write(tmp_path, "good.yaml", GOOD)
    result = runner.invoke(app, ["run", str(path), "--input", "{name: Ada"])
    assert result.exit_code == 2
    assert "not valid JSON" in result.output


def test_failed_run_exits_1_naming_the_node_and_error(runner: CliRunner, tmp_path: Path) -> None:
    path = write(tmp_path, "failing.yaml", FAILING)
    result = runner.invoke(app, ["run", str(path), "--output", "json"])
    assert result.exit_code == 1
    payload = json.loads(result.stdout)
    assert payload["status"] == "failed"
    assert payload["error"]["node_id"] == "stop"
    assert "order 42 rejected" in payload["error"]["message"]


def test_run_of_an_invalid_flow_shows_problems_and_runs_nothing(
    runner: CliRunner, tmp_path: Path
) -> None:
    result = runner.invoke(app, ["run", str(write(tmp_path, "bad.yaml", BAD))])
    assert result.exit_code == 1
    assert "unknown node type" in result.output


def test_schema_prints_the_flow_json_schema(runner: CliRunner) -> None:
    result = runner.invoke(app, ["schema"])
    assert result.exit_code == 0
    schema = json.loads(result.stdout)
    assert "nodes" in schema["properties"]


def test_installed_console_script_runs_an_example() -> None:
    # The real entry point, as a user runs it: error mapping and exit codes included.
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "flowrunner",
            "run",
            str(EXAMPLES / "hello.yaml"),
            "--input",
            '{"name": "Ada"}',
            "--output",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["status"] == "completed"


LOOPS_FOREVER = """\
metadata: {name: Loops, start: again}
nodes:
  again:
    type: log
    params: {message: "round"}
    next: {default: again}
"""


def test_run_obeys_the_max_steps_setting(runner: CliRunner, tmp_path: Path) -> None:
    path = write(tmp_path, "loop.yaml", LOOPS_FOREVER)
    result = runner.invoke(
        app, ["run", str(path), "--output", "json"], env={"FLOWRUNNER_MAX_STEPS": "5"}
    )
    assert result.exit_code == 1
    payload = json.loads(result.stdout)
    assert payload["error"]["code"] == "step_limit_exceeded"
    assert "step limit of 5 node visits" in payload["error"]["message"]
    assert result.output.count("round") == 5


def test_validate_shows_where_an_unclosed_quote_begins(runner: CliRunner, tmp_path: Path) -> None:
    path = write(tmp_path, "quote.yaml", 'metadata: {name: "Quotes}\nnodes:\n  a: {type: log}\n')
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 1
    assert f"{path}:1:18" in result.output
    assert "the quoted scalar that starts at 1:18 is never closed" in result.output
    assert '   1 | metadata: {name: "Quotes}' in result.output


def test_validate_warns_about_an_edge_the_node_never_takes(
    runner: CliRunner, tmp_path: Path
) -> None:
    path = write(
        tmp_path,
        "edges.yaml",
        "metadata: {name: Edges}\nnodes:\n"
        "  shape: {type: transform, params: {script: return 1}, next: {success: done}}\n"
        "  done: {type: log, params: {message: ok}}\n",
    )
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 0  # a warning: the flow still loads
    assert f"{path}:3:" in result.output
    assert "a 'transform' node never returns the action 'success'" in result.output
    assert "it returns default, or error when it fails" in result.output


def test_validate_reports_a_duplicate_key_together_with_the_other_errors(
    runner: CliRunner, tmp_path: Path
) -> None:
    path = write(
        tmp_path,
        "dup.yaml",
        "metadata: {name: Dup}\nnodes:\n  a: {type: lgo, next: {default: b}}\n"
        "  b: {type: log, params: {message: x}}\n  b: {type: set}\n",
    )
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 1
    assert f"{path}:3:" in result.output  # the unknown type, before the duplicate
    assert "unknown node type" in result.output
    assert f"{path}:5:3" in result.output
    assert "duplicate key 'b' (first defined at line 4)" in result.output
    assert "2 errors" in result.output


def test_set_may_copy_shared_into_itself(runner: CliRunner, tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "copy.yaml",
        "metadata: {name: Copy}\nnodes:\n"
        '  keep: {type: set, params: {values: {before: "${shared}"}}}\n',
    )
    result = runner.invoke(app, ["run", str(path), "-i", '{"a": 1}', "-o", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["output"] == {"before": {"a": 1}}


def test_json_output_stays_json_with_infinite_numbers(runner: CliRunner, tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "inf.yaml",
        "metadata: {name: Inf}\nnodes:\n"
        "  big: {type: set, params: {values: {up: .inf, down: -.inf, nan: .nan, one: 1.5}}}\n",
    )
    result = runner.invoke(app, ["run", str(path), "-o", "json"])
    assert result.exit_code == 0, result.output
    assert "Infinity" not in result.stdout
    output = json.loads(result.stdout)["output"]
    assert output == {"up": None, "down": None, "nan": None, "one": 1.5}


def test_retry_lines_number_the_attempt_that_failed(runner: CliRunner, tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "retry.yaml",
        "metadata: {name: Retry}\nnodes:\n"
        "  flaky: {type: fail, params: {message: down}, retry: {max_retries: 2}}\n",
    )
    result = runner.invoke(app, ["run", str(path)])
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if "↻" in line]
    assert len(lines) == 2
    assert "flaky attempt 1 failed: down (retrying, attempt 2)" in lines[0]
    assert "flaky attempt 2 failed: down (retrying, attempt 3)" in lines[1]


def test_a_script_that_throws_keeps_its_console_lines(runner: CliRunner, tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "throws.yaml",
        "metadata: {name: Throws}\nnodes:\n"
        "  shape:\n    type: transform\n    params:\n      script: |\n"
        "        console.log('looking at', input.id);\n"
        "        console.warn('about to give up');\n"
        "        throw new Error('no good');\n",
    )
    result = runner.invoke(app, ["run", str(path), "-i", '{"id": 7}'])
    assert result.exit_code == 1
    assert "info shape looking at 7" in result.output
    assert "warning shape about to give up" in result.output
    assert "no good" in result.output


def test_a_month_added_to_january_31_is_the_end_of_february(
    runner: CliRunner, tmp_path: Path
) -> None:
    path = write(
        tmp_path,
        "dates.yaml",
        "metadata: {name: Dates}\nnodes:\n"
        "  due: {type: transform, params: {script: \"return dates.add(input.on, 1, 'month')\"}}\n",
    )
    result = runner.invoke(app, ["run", str(path), "-i", '{"on": "2025-01-31"}', "-o", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["output"] == "2025-02-28T00:00:00.000Z"


def test_execution_metadata_has_the_keys_a_server_run_has(
    runner: CliRunner, tmp_path: Path
) -> None:
    path = write(
        tmp_path,
        "meta.yaml",
        "metadata: {name: Meta}\nnodes:\n"
        "  show: {type: transform, params: {script: return Object.keys(execution).sort()}}\n",
    )
    result = runner.invoke(app, ["run", str(path), "-o", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["output"] == ["flow", "flow_id", "flow_version", "id"]


ENDS_EARLY = """\
metadata: {name: Ends early}
nodes:
  check:
    type: switch
    params: {value: "${input.ok}", cases: {"true": done}}
    next: {done: END, default: complain}
  complain: {type: fail, params: {message: "not ok"}, next: {error: END}}
"""


@pytest.mark.parametrize(
    ("ok", "action", "last", "output"),
    [(True, "done", "check", {"ok": True}), (False, "error", "complain", None)],
)
def test_the_reserved_end_target_ends_the_run(
    runner: CliRunner, tmp_path: Path, ok: bool, action: str, last: str, output: object
) -> None:
    path = write(tmp_path, "end.yaml", ENDS_EARLY)
    result = runner.invoke(app, ["run", str(path), "-i", json.dumps({"ok": ok}), "-o", "json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["status"] == "completed"
    assert (payload["action"], payload["last_node"], payload["output"]) == (action, last, output)


def test_unknown_top_level_keys_are_warnings_and_the_flow_runs(
    runner: CliRunner, tmp_path: Path
) -> None:
    path = write(
        tmp_path,
        "extra.yaml",
        "metadata: {name: Extra}\nversion: 2\nnodes:\n  a: {type: set, params: {values: {x: 1}}}\n",
    )
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 0
    assert "warning version: unknown key 'version'" in result.output
    assert "0 errors, 1 warning" in result.output
    result = runner.invoke(app, ["run", str(path), "-o", "json"])
    assert result.exit_code == 0
    assert json.loads(result.stdout)["output"] == {"x": 1}


def test_a_sub_flow_may_take_shared_as_its_input(runner: CliRunner, tmp_path: Path) -> None:
    write(
        tmp_path,
        "sub.yaml",
        "metadata: {name: Sub}\nnodes:\n  say: {type: log, params: {message: hi}}\n",
    )
    path = write(
        tmp_path,
        "main.yaml",
        "metadata: {name: Main}\nnodes:\n"
        '  call: {type: flow, params: {path: sub.yaml, input: "${shared}"}}\n',
    )
    result = runner.invoke(app, ["run", str(path), "-i", '{"a": 1}', "-o", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["output"] == {"a": 1}


def test_a_stored_sub_flow_cannot_run_without_a_server_and_says_so(
    runner: CliRunner, tmp_path: Path
) -> None:
    path = write(
        tmp_path,
        "main.yaml",
        "metadata: {name: Main}\nnodes:\n  call: {type: flow, params: {flow: Billing}}\n",
    )
    result = runner.invoke(app, ["run", str(path), "-o", "json"])
    assert result.exit_code != 0
    assert "has no server" in result.output
    assert "use 'path:'" in result.output


def test_a_flow_node_takes_a_path_or_a_stored_flow_and_version_only_with_flow(
    runner: CliRunner, tmp_path: Path
) -> None:
    write(
        tmp_path,
        "sub.yaml",
        "metadata: {name: Sub}\nnodes:\n  say: {type: log, params: {message: hi}}\n",
    )
    both = write(
        tmp_path,
        "both.yaml",
        "metadata: {name: Both}\nnodes:\n"
        "  call: {type: flow, params: {path: sub.yaml, flow: Sub}}\n",
    )
    result = runner.invoke(app, ["validate", str(both)])
    assert result.exit_code != 0
    assert "either path (a flow file) or flow" in result.output
    pinned = write(
        tmp_path,
        "pinned.yaml",
        "metadata: {name: Pinned}\nnodes:\n"
        "  call: {type: flow, params: {path: sub.yaml, version: 2}}\n",
    )
    result = runner.invoke(app, ["validate", str(pinned)])
    assert result.exit_code != 0
    assert "version applies to a stored flow" in result.output
