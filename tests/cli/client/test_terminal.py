"""The client in a real terminal (tmux): the hidden password prompt, the live view of a
followed run, Ctrl-C asking whether to cancel the run, and the coloured diff."""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.client.conftest import Cli
from tests.cli.client.flows import napping, steps
from tests.cli.client.tmux import Terminal
from tests.e2e.server import ADMIN, Server

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux"),
]
FLOWRUNNER = (sys.executable, "-m", "flowrunner")


@pytest.fixture
def terminal(cli: Cli, tmp_path: Path) -> Iterator[Terminal]:
    term = Terminal({"FLOWRUNNER_CLI_CONFIG": str(cli.config)}, tmp_path)
    try:
        yield term
    finally:
        term.close()


def test_login_prompts_for_the_password_without_showing_it(
    cli: Cli, server: Server, terminal: Terminal
) -> None:
    terminal.run(*FLOWRUNNER, "login", "--url", server.url)
    terminal.wait_for("Username:")
    terminal.type(ADMIN[0])
    terminal.wait_for("Password:")
    terminal.type(ADMIN[1])
    screen = terminal.wait_for("logged in to")
    assert ADMIN[1] not in screen
    assert "as admin (admin)" in " ".join(screen.split())
    assert ADMIN[1] not in cli.config.read_text()
    assert cli.ok("whoami", "-o", "json").stdout.count('"username": "admin"') == 1


def test_a_followed_run_is_drawn_live_then_its_output(
    admin_cli: Cli, terminal: Terminal, tmp_path: Path
) -> None:
    flow = tmp_path / "live.yaml"
    flow.write_text(steps("Live in a terminal", nap=4))
    admin_cli.ok("flows", "push", str(flow))
    terminal.run(*FLOWRUNNER, "flows", "run", "Live in a terminal", "-i", '{"name": "Ada"}', "-f")
    during = terminal.wait_for("running nap")  # the spinner on the node that runs now
    assert "✓ greet" in during
    assert "✓ say" in during
    assert "hi Ada" in during
    after = terminal.wait_for("completed in")
    lines = after.splitlines()
    assert [line.split()[1] for line in lines if line.startswith("✓ ")] == [
        "greet", "say", "nap", "done",
    ]  # fmt: skip
    assert "running nap" not in after  # the spinner line is gone once the run ended
    output = after[after.index("completed in") :].split("\n", 1)[1]
    assert json.loads(output[: output.rindex("}") + 1]) == {"done": True}


def test_ctrl_c_while_following_asks_and_cancels_the_run(
    admin_cli: Cli, terminal: Terminal, tmp_path: Path
) -> None:
    flow = tmp_path / "long.yaml"
    flow.write_text(napping("Long nap in a terminal", 600))
    admin_cli.ok("flows", "push", str(flow))
    terminal.run(*FLOWRUNNER, "flows", "run", "Long nap in a terminal", "--follow")
    terminal.wait_for("running nap")
    terminal.key("C-c")
    terminal.wait_for("Cancel the run")
    terminal.type("y")
    screen = terminal.wait_for("canceled")
    assert "Traceback" not in screen
    runs = json.loads(
        admin_cli.ok("executions", "list", "--flow", "Long nap in a terminal", "-o", "json").stdout
    )
    assert [r["status"] for r in runs] == ["canceled"]


def test_secrets_set_prompts_for_the_value_without_showing_it(
    admin_cli: Cli, terminal: Terminal
) -> None:
    terminal.run(*FLOWRUNNER, "secrets", "set", "TYPED_IN_TERMINAL")
    terminal.wait_for("Value:")
    terminal.type("typed-secret-value-1")
    screen = terminal.wait_for("saved secret TYPED_IN_TERMINAL")
    assert "typed-secret-value-1" not in screen
    revealed = admin_cli.ok("secrets", "get", "TYPED_IN_TERMINAL", "--reveal").stdout
    assert revealed == "typed-secret-value-1\n"


def test_flows_diff_is_coloured_on_a_terminal(
    admin_cli: Cli, terminal: Terminal, tmp_path: Path
) -> None:
    flow = tmp_path / "diffed.yaml"
    flow.write_text(steps("Diffed in a terminal"))
    admin_cli.ok("flows", "push", str(flow))
    flow.write_text(steps("Diffed in a terminal", nap=0.01))
    admin_cli.ok("flows", "push", str(flow))
    terminal.run(*FLOWRUNNER, "flows", "diff", "Diffed in a terminal", "1", "2")
    screen = terminal.wait_for("duration: 0.01", escapes=True)
    lines = screen.splitlines()
    [added] = [line for line in lines if "duration: 0.01" in line]
    [removed] = [line for line in lines if "duration: 0.05" in line]
    assert "\x1b[32m" in added  # green
    assert "\x1b[31m" in removed  # red
    piped = admin_cli.ok("flows", "diff", "Diffed in a terminal", "1", "2").stdout
    assert "\x1b[" not in piped  # no colour codes in a pipe
