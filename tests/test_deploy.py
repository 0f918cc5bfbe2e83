"""deploy/docker-compose.yml stays true to the code: every `flowrunner` command it runs exists
with its options, and every FLOWRUNNER_* variable it sets is a setting."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from typer.testing import CliRunner

from flowrunner.cli.app import app
from flowrunner.config import Settings

COMPOSE = Path(__file__).resolve().parents[1] / "deploy" / "docker-compose.yml"


def _services() -> dict[str, Any]:
    services: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())["services"]
    return services


def test_every_flowrunner_command_of_the_compose_file_exists_with_its_options() -> None:
    commands = [s["command"] for s in _services().values() if s.get("image") == "flowrunner"]
    assert {c[1] for c in commands} == {"serve", "worker", "db"}
    for command in commands:
        # --help after the command's own options: click checks those options exist first.
        result = CliRunner().invoke(app, [*command[1:], "--help"])
        assert result.exit_code == 0, (command, result.output)


def test_every_variable_of_the_compose_file_is_a_setting() -> None:
    env: dict[str, str] = _services()["api"]["environment"]
    fields = {f"FLOWRUNNER_{name.upper()}" for name in Settings.model_fields}
    assert set(env) <= fields
    assert env["FLOWRUNNER_EXECUTOR"] == "celery"
