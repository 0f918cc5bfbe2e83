"""``flowrunner executions`` against a real server: get, logs (and -f), cancel, retry."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.client.conftest import _CLIENT_ENV, Cli
from tests.cli.client.flows import failing, napping, steps
from tests.conftest import HANG_GUARD

pytestmark = pytest.mark.slow


def test_get_logs_and_logs_follow_of_a_finished_run(admin_cli: Cli, tmp_path: Path) -> None:
    flow = tmp_path / "s.yaml"
    flow.write_text(steps("Logged run"))
    admin_cli.ok("flows", "push", str(flow))
    record = json.loads(
        admin_cli.ok(
            "flows", "run", "Logged run", "-i", '{"name": "Cy"}', "--wait", "-o", "json"
        ).stdout
    )
    shown = admin_cli.ok("executions", "get", record["id"]).stdout
    assert "completed" in shown
    assert '{"done": true}' in shown
    logged = admin_cli.ok("executions", "logs", record["id"], "-o", "json").stdout
    lines = [json.loads(line) for line in logged.splitlines()]
    assert [e["data"]["message"] for e in lines] == ["hi Cy"]
    followed = admin_cli.ok("executions", "logs", record["id"], "--follow")
    assert followed.stdout.count("hi Cy") == 1  # the history, and nothing twice
    assert admin_cli("executions", "get", "no-such-run").returncode == 3


def test_cancel_a_running_run_and_retry_it(admin_cli: Cli, tmp_path: Path) -> None:
    flow = tmp_path / "nap.yaml"
    flow.write_text(napping("Canceled by the CLI", 600))
    admin_cli.ok("flows", "push", str(flow))
    execution_id = admin_cli.ok("flows", "run", "Canceled by the CLI").stdout.strip()
    canceled = json.loads(admin_cli.ok("executions", "cancel", execution_id, "-o", "json").stdout)
    assert canceled["status"] == "canceled"
    again = admin_cli("executions", "cancel", execution_id)
    assert again.returncode == 1  # 409: it has ended
    assert "correlation id" in again.stderr
    retried = admin_cli.ok("executions", "retry", execution_id).stdout.strip()
    assert retried != execution_id
    admin_cli.ok("executions", "cancel", retried)


def test_retry_resume_of_a_failed_run(admin_cli: Cli, tmp_path: Path) -> None:
    flow = tmp_path / "f.yaml"
    flow.write_text(failing("Resumed by the CLI"))
    admin_cli.ok("flows", "push", str(flow))
    failed = json.loads(
        admin_cli("flows", "run", "Resumed by the CLI", "--wait", "-o", "json").stdout
    )
    resumed = admin_cli("executions", "retry", failed["id"], "--resume", "--follow")
    assert resumed.returncode == 1  # it fails again at the same node…
    assert "✓ ok" not in resumed.stderr  # …without running the node before it again
    assert "✗ boom" in resumed.stderr
    args = ("executions", "list", "--flow", "Resumed by the CLI", "-s", "failed", "-o", "json")
    listed = json.loads(admin_cli.ok(*args).stdout)
    assert len(listed) == 2
    assert json.loads(admin_cli.ok(*args, "--since", "2000-01-01T00:00Z").stdout) == listed
    assert json.loads(admin_cli.ok(*args, "--until", "2000-01-01T00:00Z").stdout) == []
    refused = admin_cli("executions", "list", "--since", "yesterday")
    assert refused.returncode == 2
    assert "--since" in refused.stderr


SIGNALLED = """metadata: {name: Logs followed live}
nodes:
  before: {type: log, params: {message: "before the signal"}, next: {default: hold}}
  hold: {type: wait_for, params: {name: go}, next: {default: after}}
  after: {type: log, params: {message: "after the signal"}}
"""


def test_logs_follow_of_a_running_run_prints_new_lines_as_they_come(
    admin_cli: Cli, tmp_path: Path
) -> None:
    flow = tmp_path / "signalled.yaml"
    flow.write_text(SIGNALLED)
    admin_cli.ok("flows", "push", str(flow))
    execution_id = admin_cli.ok("flows", "run", "Logs followed live").stdout.strip()
    base = {k: v for k, v in os.environ.items() if k not in _CLIENT_ENV}
    env = {**base, "FLOWRUNNER_CLI_CONFIG": str(admin_cli.config)}
    command = [sys.executable, "-m", "flowrunner", "executions", "logs", execution_id, "-f"]
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    ) as follower:
        try:
            assert follower.stdout is not None
            seen = []
            for line in follower.stdout:  # the run waits: the follower cannot end before
                seen.append(line)
                if "before the signal" in line:
                    break
            # The run holds at the wait_for until now: "after" can only come live.
            admin_cli.ok("executions", "signal", execution_id, "go", "--data", "{}")
            out, err = follower.communicate(timeout=HANG_GUARD)
        finally:
            if follower.poll() is None:
                follower.kill()
    assert follower.returncode == 0, err
    printed = "".join(seen) + out
    assert printed.count("before the signal") == 1, printed
    assert printed.count("after the signal") == 1, printed
    assert printed.index("before the signal") < printed.index("after the signal")
