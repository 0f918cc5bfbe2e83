"""Usage errors are one line and exit 2 for every kind of command, and every command's
``--help`` ends with an example. No server is needed: nothing is sent."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer.main

from flowrunner.cli.app import app


def flowrunner(*args: str, config: Path) -> subprocess.CompletedProcess[str]:
    env = {
        "FLOWRUNNER_CLI_CONFIG": str(config),
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
    }
    return subprocess.run(
        [sys.executable, "-m", "flowrunner", *args],
        capture_output=True, text=True, timeout=60, check=False, env=env,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["flows", "nope"], "No such command 'nope'"),
        (["flows", "get"], "Missing argument"),
        (["flows", "list", "--bogus"], "No such option: --bogus"),
        (["flows", "list", "-o", "xml"], "'xml' is not one of"),
        (["flows", "run", "f", "--input", "{x", "--url", "http://127.0.0.1:9"], "not valid JSON"),
        (["flows", "run", "f", "--wait", "--follow", "--url", "http://x"], "exclude each other"),
        (["flows", "list"], "no server given"),
        (["flows", "list", "--profile", "nope"], "no profile 'nope'"),
        (["secrets", "import", "/no/such.env", "--url", "http://127.0.0.1:9"], "cannot read"),
        (["executions", "list", "--since", "yesterday", "--url", "http://x"], "ISO 8601"),
        (["login", "--url", "ftp://x", "-u", "a", "--password-stdin"], "http://"),
        (["admin", "accounts", "create"], "Missing argument"),
        (["validate"], "Missing argument"),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(
    args: list[str], message: str, tmp_path: Path
) -> None:
    done = flowrunner(*args, config=tmp_path / "none.toml")
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: ")
    assert message in lines[0]


def _commands(group: Any, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = []
    for name, sub in group.commands.items():
        if hasattr(sub, "commands"):  # a group (Typer bundles its own click: no isinstance)
            found += _commands(sub, (*path, name))
        elif not sub.hidden:
            found.append((*path, name))
    return found


COMMANDS = _commands(typer.main.get_command(app))


def test_the_client_and_local_commands_are_all_there() -> None:
    expected = {
        ("login",), ("logout",), ("whoami",), ("profile", "list"), ("profile", "use"),
        ("flows", "list"), ("flows", "get"), ("flows", "create"), ("flows", "push"),
        ("flows", "update"), ("flows", "delete"), ("flows", "versions"), ("flows", "diff"),
        ("flows", "restore"), ("flows", "validate"), ("flows", "run"),
        ("executions", "list"), ("executions", "get"), ("executions", "logs"),
        ("executions", "cancel"), ("executions", "retry"),
        ("secrets", "list"), ("secrets", "set"), ("secrets", "get"), ("secrets", "delete"),
        ("secrets", "import"), ("secrets", "export"),
        ("tokens", "list"), ("tokens", "create"), ("tokens", "revoke"),
        ("accounts", "list"), ("accounts", "create"), ("accounts", "disable"),
        ("audit", "list"),
        ("run",), ("validate",), ("schema",), ("serve",), ("db", "upgrade"),
        ("admin", "accounts", "create"), ("admin", "secrets", "rotate-key"),
        ("admin", "audit", "verify"),
    }  # fmt: skip
    assert expected <= set(COMMANDS)


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_has_help_with_an_example(command: tuple[str, ...]) -> None:
    from typer.testing import CliRunner

    result = CliRunner().invoke(app, [*command, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "Example:" in result.output
    assert "flowrunner " in result.output.split("Example:")[1]


def test_the_old_spellings_of_local_store_commands_still_work(tmp_path: Path) -> None:
    for args in (["secrets", "rotate-key", "--help"], ["audit", "verify", "--help"]):
        assert flowrunner(*args, config=tmp_path / "x.toml").returncode == 0


def test_shell_completion_can_be_shown() -> None:
    from typer.testing import CliRunner

    result = CliRunner().invoke(app, ["--show-completion", "bash"], env={"SHELL": "/bin/bash"})
    assert result.exit_code == 0
    assert "complete" in result.output


def test_shell_completion_installs_and_completes(tmp_path: Path) -> None:
    env = {
        "HOME": str(tmp_path),
        "SHELL": "/bin/bash",
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
    }
    command = [sys.executable, "-m", "flowrunner"]
    installed = subprocess.run(
        [*command, "--install-completion", "bash"],
        capture_output=True, text=True, timeout=60, check=False, env=env,
    )  # fmt: skip
    assert installed.returncode == 0, installed.stderr
    script = tmp_path / ".bash_completions" / "flowrunner.sh"
    assert str(script) in (tmp_path / ".bashrc").read_text()
    assert "_FLOWRUNNER_COMPLETE" in script.read_text()
    # What bash asks when the user presses Tab after `flowrunner flows pu`:
    asked = {**env, "_FLOWRUNNER_COMPLETE": "complete_bash", "COMP_CWORD": "2",
             "COMP_WORDS": "flowrunner flows pu"}  # fmt: skip
    completed = subprocess.run(
        command, capture_output=True, text=True, timeout=60, check=False, env=asked
    )
    assert completed.stdout.split() == ["push"]
