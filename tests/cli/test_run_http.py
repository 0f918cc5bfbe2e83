"""``flowrunner run`` with http.request nodes, as a user types it (a subprocess): the example
against its server, the secret masked in everything printed, loopback refused by default."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.test_examples import EXAMPLES, example_server

TOKEN = "demo-token"


def flowrunner_run(*args: str, allow_private: bool) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWRUNNER_HTTP_")}
    if allow_private:
        env["FLOWRUNNER_HTTP_ALLOW_PRIVATE"] = "true"
    return subprocess.run(
        [sys.executable, "-m", "flowrunner", "run", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )


def test_the_http_example_runs_from_the_cli_with_the_token_masked() -> None:
    flow = EXAMPLES / "http-orders.yaml"
    with example_server(flow.with_suffix(".server.py")) as address:
        run_input = json.dumps({"base_url": address, "min_total": 100, "echo": TOKEN})
        proc = flowrunner_run(
            str(flow), "--input", run_input, "--secret", f"ORDERS_TOKEN={TOKEN}",
            "--output", "json", allow_private=True,
        )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["status"] == "completed"
    assert result["output"] == json.loads(flow.with_suffix(".expected.json").read_text())
    assert TOKEN not in proc.stdout + proc.stderr  # the run input echoing it is masked too


def test_the_cli_refuses_loopback_by_default_naming_host_and_reason(tmp_path: Path) -> None:
    flow = tmp_path / "f.yaml"
    flow.write_text(
        "metadata: {name: f}\nnodes:\n  get: {type: http.request, params: {url: 'http://127.0.0.1:9/'}}\n"
    )
    proc = flowrunner_run(str(flow), "--output", "json", allow_private=False)
    assert proc.returncode == 1, proc.stderr
    error = json.loads(proc.stdout)["error"]
    assert error["node_id"] == "get"
    assert "refused to connect to '127.0.0.1': a loopback address" in error["message"]
    assert "FLOWRUNNER_HTTP_ALLOW_PRIVATE" in error["message"]
