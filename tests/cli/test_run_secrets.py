"""``flowrunner run`` secrets: FLOWRUNNER_SECRET_* variables, --secrets-file, --secret."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flowrunner.cli.app import app

USES_SECRET = """\
metadata: {name: Uses a secret}
nodes:
  call:
    type: set
    params:
      values: {header: "Bearer ${secrets.TOKEN}", user: "${secrets.DB.user}"}
    next: {default: say}
  say:
    type: log
    params: {message: "sending ${shared.header}"}
"""

LEAKS_ON_FAILURE = """\
metadata: {name: Leaks on failure}
nodes:
  stop:
    type: fail
    params: {message: "token ${secrets.TOKEN} was refused"}
"""


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def flow(tmp_path: Path) -> Path:
    path = tmp_path / "flow.yaml"
    path.write_text(USES_SECRET)
    return path


def run(runner: CliRunner, *args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    # Wide enough that Typer's error panel does not wrap a long temporary path.
    result = runner.invoke(
        app, ["run", *args, "--output", "json"], env={"COLUMNS": "400", **(env or {})}
    )
    return result.exit_code, result.output


def test_secret_flag_reaches_the_flow_and_is_masked_everywhere(
    runner: CliRunner, flow: Path
) -> None:
    code, output = run(runner, str(flow), "--secret", "TOKEN=tok-s3cr3t-value")
    assert code == 0, output
    assert "tok-s3cr3t-value" not in output  # neither the log line nor the result
    assert "sending Bearer ***" in output
    payload = json.loads(output[output.index("{") :])
    assert payload["output"]["header"] == "Bearer ***"


def test_dotenv_secrets_file_gives_the_flow_its_secrets(
    runner: CliRunner, flow: Path, tmp_path: Path
) -> None:
    env_file = tmp_path / "secrets.env"
    env_file.write_text(
        '# local secrets\nexport TOKEN="dotenv-token-123"\nOTHER=plain  # a comment\n'
    )
    code, output = run(runner, str(flow), "--secrets-file", str(env_file))
    assert code == 0, output
    assert "dotenv-token-123" not in output
    assert "sending Bearer ***" in output


def test_json_secrets_file_may_hold_structured_secrets(
    runner: CliRunner, flow: Path, tmp_path: Path
) -> None:
    json_file = tmp_path / "secrets.json"
    json_file.write_text(json.dumps({"TOKEN": "json-token-456", "DB": {"user": "db-admin-789"}}))
    code, output = run(runner, str(flow), "--secrets-file", str(json_file))
    assert code == 0, output
    assert "json-token-456" not in output
    assert "db-admin-789" not in output
    payload = json.loads(output[output.index("{") :])
    assert payload["output"]["user"] == "***"


def test_environment_variables_are_secrets_and_flags_win(runner: CliRunner, flow: Path) -> None:
    env = {"FLOWRUNNER_SECRET_TOKEN": "from-env-token"}
    code, output = run(runner, str(flow), env=env)
    assert code == 0, output
    assert "from-env-token" not in output
    assert "sending Bearer ***" in output
    code, output = run(runner, str(flow), "--secret", "TOKEN=from-flag-token", env=env)
    assert code == 0, output
    assert "from-flag-token" not in output
    assert "from-env-token" not in output


def test_the_vault_key_setting_is_not_a_secret(runner: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "flow.yaml"
    path.write_text(
        "metadata: {name: Keys}\nnodes:\n  show:\n    type: set\n"
        '    params: {values: {keys: "${secrets.KEYS}"}}\n'
    )
    code, output = run(runner, str(path), env={"FLOWRUNNER_SECRET_KEYS": "not-a-flow-secret"})
    assert code == 0, output
    payload = json.loads(output[output.index("{") :])
    assert payload["output"]["keys"] is None


def test_a_failure_message_does_not_show_the_secret(runner: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "flow.yaml"
    path.write_text(LEAKS_ON_FAILURE)
    code, output = run(runner, str(path), "--secret", "TOKEN=refused-token-42")
    assert code == 1
    assert "refused-token-42" not in output
    assert "token *** was refused" in output
    code, output = run(runner, str(path), "-o", "pretty", "--secret", "TOKEN=refused-token-42")
    assert code == 1
    assert "refused-token-42" not in output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--secret", "NOVALUE"], "expected KEY=VALUE"),
        (["--secret", "bad-name=x"], "secret name 'bad-name'"),
    ],
)
def test_malformed_secret_flags_are_usage_errors(
    runner: CliRunner, flow: Path, args: list[str], message: str
) -> None:
    code, output = run(runner, str(flow), *args)
    assert code == 2
    assert message in output


def test_a_malformed_secrets_file_names_the_line_but_not_the_value(
    runner: CliRunner, flow: Path, tmp_path: Path
) -> None:
    env_file = tmp_path / "secrets.env"
    env_file.write_text("TOKEN=fine\nthis line has the value hunter2\n")
    code, output = run(runner, str(flow), "--secrets-file", str(env_file))
    assert code == 2
    assert "secrets.env:2" in output
    assert "hunter2" not in output
