"""The path a user takes, end to end against a real server: log in, push a flow, run and
follow it, read its logs, manage secrets, export them, revoke the token — and see the
revoked profile refused with a clear message."""

from __future__ import annotations

import json
import stat
import tomllib
from pathlib import Path

import pytest

from tests.cli.client.conftest import USER_PASSWORD, Cli
from tests.cli.client.flows import steps, uses_secret

pytestmark = pytest.mark.slow


def _node_lines(stderr: str) -> list[str]:
    return [line.split()[1] for line in stderr.splitlines() if line.startswith("✓ ")]


def test_login_push_follow_logs_secrets_export_and_a_revoked_token(
    user_cli: Cli, tmp_path: Path
) -> None:
    cli = user_cli  # logged in by the fixture, as a user of its own
    stored = cli.config.read_text()
    assert "token = " in stored
    assert USER_PASSWORD not in stored  # never the password
    assert stat.S_IMODE(cli.config.stat().st_mode) == 0o600

    flow_file = tmp_path / "steps.yaml"
    flow_file.write_text(steps("Workflow steps"))
    pushed = json.loads(cli.ok("flows", "push", str(flow_file), "-o", "json").stdout)
    assert (pushed["name"], pushed["version"]) == ("Workflow steps", 1)

    run = cli.ok("flows", "run", "Workflow steps", "--input", '{"name": "Ada"}', "--follow")
    assert _node_lines(run.stderr) == ["greet", "say", "nap", "done"]
    assert "info say hi Ada" in " ".join(run.stderr.split())
    assert "completed" in run.stderr
    assert json.loads(run.stdout) == {"done": True}

    runs = json.loads(cli.ok("executions", "list", "--flow", pushed["id"], "-o", "json").stdout)
    assert [r["status"] for r in runs] == ["completed"]
    logs = cli.ok("executions", "logs", runs[0]["id"])
    assert "hi Ada" in logs.stdout

    dotenv = tmp_path / "secrets.env"
    dotenv.write_text('SHOP_TOKEN=shop-secret-1\nexport DB_PASSWORD="pa ss\\"word"\n')
    imported = cli.ok("secrets", "import", str(dotenv))
    assert "added 2: DB_PASSWORD, SHOP_TOKEN" in imported.stderr
    listed = json.loads(cli.ok("secrets", "list", "-o", "json").stdout)
    assert [s["key"] for s in listed] == ["DB_PASSWORD", "SHOP_TOKEN"]
    assert "shop-secret-1" not in json.dumps(listed)
    hidden = cli.ok("secrets", "get", "SHOP_TOKEN")
    assert "shop-secret-1" not in hidden.stdout + hidden.stderr
    assert cli.ok("secrets", "get", "DB_PASSWORD", "--reveal").stdout == 'pa ss"word\n'
    cli.ok("secrets", "delete", "DB_PASSWORD")
    assert cli("secrets", "get", "DB_PASSWORD").returncode == 3

    exported = tmp_path / "backup.env"
    done = cli.ok("secrets", "export", "--file", str(exported))
    assert "plain text" in done.stderr
    assert stat.S_IMODE(exported.stat().st_mode) == 0o600
    assert exported.read_text() == 'SHOP_TOKEN="shop-secret-1"\n'

    token_id = tomllib.loads(cli.config.read_text())["profiles"]["default"]["token_id"]
    tokens = json.loads(cli.ok("tokens", "list", "-o", "json").stdout)
    assert token_id in [t["id"] for t in tokens]
    cli.ok("tokens", "revoke", token_id)

    refused = cli("flows", "list")
    assert refused.returncode == 3
    assert "Traceback" not in refused.stderr
    [line] = refused.stderr.strip().splitlines()
    assert line.startswith("error: ")
    assert "log in again" in line
    assert "correlation id" in line


def test_a_run_shows_secret_values_masked(user_cli: Cli, tmp_path: Path) -> None:
    cli = user_cli
    value = tmp_path / "value.txt"
    value.write_text("very-secret-value\n")
    cli.ok("secrets", "set", "SHOP_TOKEN", "--from-file", str(value))
    flow = tmp_path / "secret.yaml"
    flow.write_text(uses_secret("Masked secret"))
    cli.ok("flows", "create", str(flow))
    run = cli.ok("flows", "run", "Masked secret", "--follow")
    assert "token is ***" in run.stderr
    assert "very-secret-value" not in run.stdout + run.stderr
