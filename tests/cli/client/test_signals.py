"""``flowrunner executions signal`` and waiting runs in ``executions get/list`` and the live
view, as typed, against a real server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.cli.client.conftest import _CLIENT_ENV, Cli
from tests.conftest import HANG_GUARD

pytestmark = pytest.mark.slow

APPROVAL = """metadata: {name: CLI approval}
nodes:
  approve:
    type: wait_for
    params:
      name: decision
      schema: {type: object, required: [decision]}
    next: {default: done}
  done: {type: set, params: {values: {decided: "${input.decision}"}}}
"""


def _until_waiting(cli: Cli, execution_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + HANG_GUARD  # guards a hang only
    while time.monotonic() < deadline:
        record: dict[str, Any] = json.loads(
            cli.ok("executions", "get", execution_id, "-o", "json").stdout
        )
        if record["status"] == "waiting":
            return record
        time.sleep(0.1)
    raise AssertionError("the run never waited")


def test_a_waiting_run_is_shown_and_resumed_by_a_signal(admin_cli: Cli, tmp_path: Path) -> None:
    flow = tmp_path / "approval.yaml"
    flow.write_text(APPROVAL)
    admin_cli.ok("flows", "push", str(flow))
    execution_id = admin_cli.ok("flows", "run", "CLI approval").stdout.strip()
    record = _until_waiting(admin_cli, execution_id)
    assert record["waiting_for"]["signal"] == "decision"
    shown = admin_cli.ok("executions", "get", execution_id).stdout
    assert "waiting" in shown
    assert "signal 'decision' at approve" in shown
    listed = json.loads(admin_cli.ok("executions", "list", "-s", "waiting", "-o", "json").stdout)
    assert execution_id in [r["id"] for r in listed]

    invalid = admin_cli("executions", "signal", execution_id, "decision", "--data", "{}")
    assert invalid.returncode == 1  # 422: the payload misses 'decision'; still waiting
    assert "schema" in invalid.stderr
    not_json = admin_cli("executions", "signal", execution_id, "decision", "--data", "{oops")
    assert not_json.returncode == 2
    wrong = admin_cli("executions", "signal", execution_id, "other", "--data", "{}")
    assert wrong.returncode == 1  # 409: it waits for another signal

    sent = admin_cli.ok(
        "executions", "signal", execution_id, "decision",
        "--data", '{"decision": "approve"}', "--wait", "-o", "json",
    )  # fmt: skip
    done = json.loads(sent.stdout)
    assert done["status"] == "completed"
    assert done["output"] == {"decided": "approve"}


def test_the_live_view_shows_the_wait(admin_cli: Cli, tmp_path: Path) -> None:
    flow = tmp_path / "approval.yaml"
    flow.write_text(APPROVAL.replace("CLI approval", "CLI approval followed"))
    admin_cli.ok("flows", "push", str(flow))
    base = {k: v for k, v in os.environ.items() if k not in _CLIENT_ENV}
    env = {**base, "FLOWRUNNER_CLI_CONFIG": str(admin_cli.config), **admin_cli.env}
    follower = subprocess.Popen(
        [sys.executable, "-m", "flowrunner", "flows", "run", "CLI approval followed",
         "--follow"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + HANG_GUARD  # guards a hang only
        waiting: list[dict[str, Any]] = []
        while not waiting and time.monotonic() < deadline:
            time.sleep(0.1)
            listed = admin_cli.ok(
                "executions", "list", "--flow", "CLI approval followed", "-s", "waiting",
                "-o", "json",
            )  # fmt: skip
            waiting = json.loads(listed.stdout)
        execution_id = waiting[0]["id"]
        admin_cli.ok(
            "executions", "signal", execution_id, "decision", "--data", '{"decision": "no"}'
        )
        out, err = follower.communicate(timeout=HANG_GUARD)
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.wait()
    assert follower.returncode == 0, err
    assert "approve waiting for signal 'decision'" in err
    assert "signal 'decision' received" in err
    assert json.loads(out) == {"decided": "no"}
