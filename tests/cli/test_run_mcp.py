"""``flowrunner run`` with mcp nodes, as a user types it (a subprocess): the examples over
stdio and HTTP, a secret header masked in everything printed, the stdio allow-list refusal."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.nodes.mcp.conftest import ALLOWED, http_server, stdio_params
from tests.test_examples import EXAMPLES, MCP_STDIO_ALLOWED, example_server

SECRET = "mcp-s3cret-header"


def flowrunner_run(
    *args: str, cwd: Path | None = None, **settings: str
) -> subprocess.CompletedProcess[str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("FLOWRUNNER_HTTP_", "FLOWRUNNER_MCP_"))
    }
    env.update({f"FLOWRUNNER_{k.upper()}": v for k, v in settings.items()})
    return subprocess.run(
        [sys.executable, "-m", "flowrunner", "run", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
        cwd=cwd,
    )


def test_the_stdio_example_runs_from_the_cli_with_its_command_allowed() -> None:
    flow = EXAMPLES / "mcp-notes-stdio.yaml"
    run_input = json.dumps({"text": "ship it", "python": sys.executable})
    proc = flowrunner_run(
        str(flow), "--input", run_input, "--output", "json",
        cwd=EXAMPLES.parent, mcp_stdio_commands=MCP_STDIO_ALLOWED,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads(proc.stdout)
    assert result["status"] == "completed"
    assert result["output"] == json.loads(flow.with_suffix(".expected.json").read_text())


def test_the_http_example_runs_from_the_cli() -> None:
    flow = EXAMPLES / "mcp-notes.yaml"
    with example_server(flow.with_suffix(".server.py")) as address:
        run_input = json.dumps({"base_url": address, "text": "MCP from a flow"})
        proc = flowrunner_run(
            str(flow), "--input", run_input, "--secret", "MCP_TOKEN=demo-token",
            "--output", "json", http_allow_private="true",
        )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert json.loads(proc.stdout)["output"] == json.loads(
        flow.with_suffix(".expected.json").read_text()
    )


def test_a_secret_header_is_masked_in_everything_the_cli_prints(tmp_path: Path) -> None:
    flow = tmp_path / "f.yaml"
    with http_server() as url:
        flow.write_text(
            "metadata: {name: f}\nnodes:\n  call:\n    type: mcp\n    params:\n"
            f'      url: "{url}"\n      headers: {{X-Token: "${{secrets.T}}"}}\n'
            "      tool: header\n      arguments: {name: x-token}\n"
        )
        for output in ("json", "pretty"):
            proc = flowrunner_run(
                str(flow), "--secret", f"T={SECRET}", "--output", output,
                http_allow_private="true",
            )  # fmt: skip
            assert proc.returncode == 0, proc.stdout + proc.stderr
            assert SECRET not in proc.stdout + proc.stderr
            assert "***" in proc.stdout


def test_the_cli_refuses_a_stdio_command_off_the_allow_list(tmp_path: Path) -> None:
    flow = tmp_path / "f.yaml"
    node = f"{{type: mcp, params: {{{stdio_params('tool: add')}}}}}"
    flow.write_text(f"metadata: {{name: f}}\nnodes:\n  call: {node}\n")
    proc = flowrunner_run(str(flow), "--output", "json")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    error = json.loads(proc.stdout)["error"]
    assert error["node_id"] == "call"
    assert "not on the server's allow-list" in error["message"]
    assert "FLOWRUNNER_MCP_STDIO_COMMANDS" in error["message"]
    allowed = flowrunner_run(str(flow), "--output", "json", mcp_stdio_commands=ALLOWED)
    assert allowed.returncode == 1  # allowed now, but `add` needs arguments
    assert "not on the server's allow-list" not in allowed.stdout
