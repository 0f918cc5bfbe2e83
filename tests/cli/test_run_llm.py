"""``flowrunner run`` with llm nodes, as a user types it (a subprocess): the tool-calling
example against its scripted model server, the key masked in everything printed, and a
loopback model server refused by default."""

from __future__ import annotations

import json

from tests.cli.test_run_http import flowrunner_run
from tests.test_examples import EXAMPLES, example_server

KEY = "sk-cli-5e8d21f0"


def test_the_tool_calling_example_runs_from_the_cli_with_the_key_masked() -> None:
    flow = EXAMPLES / "llm-tools.yaml"
    run_input = json.loads(flow.with_suffix(".input.json").read_text())
    with example_server(flow.with_suffix(".server.py")) as address:
        run_input["base_url"] = address
        run_input["question"] = f"{run_input['question']} {KEY}"  # echoed back by the model
        proc = flowrunner_run(
            str(flow), "--input", json.dumps(run_input), "--secret", f"OPENAI_API_KEY={KEY}",
            "--output", "json", allow_private=True,
        )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["status"] == "completed"
    assert result["output"]["answer"].startswith("The answer is {")
    assert KEY not in proc.stdout + proc.stderr


def test_a_loopback_model_server_is_refused_by_default() -> None:
    flow = EXAMPLES / "llm-tools.yaml"
    run_input = {"base_url": "http://127.0.0.1:9/v1", "model": "m", "question": "q"}
    proc = flowrunner_run(
        str(flow), "--input", json.dumps(run_input), "--secret", "OPENAI_API_KEY=x",
        "--output", "json", allow_private=False,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    error = json.loads(proc.stdout)["error"]
    assert error["node_id"] == "ask"
    assert "refused to connect to '127.0.0.1': a loopback address" in error["message"]
