"""``flowrunner node-types`` for an account's own JavaScript node types, against a real
server: push (create, unchanged, new version with a message), get (YAML to edit and push
back), versions, list --mine, a flow run using the type, delete; another account sees none."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.client.conftest import Cli

pytestmark = pytest.mark.slow

GREET = """name: cli.greet
description: Greets params.name.
params:
  type: object
  properties:
    name: {type: string}
  required: [name]
script: |
  console.log("greeting " + params.name);
  return `Hello, ${params.name}!`;
"""

FLOW = """metadata: {name: Greets from the CLI}
nodes:
  hi: {type: cli.greet, params: {name: "${input.who}"}}
"""


def test_push_get_versions_run_and_delete_an_accounts_node_type(
    user_cli: Cli, admin_cli: Cli, tmp_path: Path
) -> None:
    cli = user_cli
    definition = tmp_path / "greet.yaml"
    definition.write_text(GREET)
    created = cli.ok("node-types", "push", str(definition))
    assert "created node type cli.greet version 1" in created.stderr
    assert "unchanged" in cli.ok("node-types", "push", str(definition)).stderr
    definition.write_text(GREET.replace("Hello", "Hi"))
    pushed = cli.ok("node-types", "push", str(definition), "-m", "less formal")
    assert "updated node type cli.greet version 2" in pushed.stderr

    mine = json.loads(cli.ok("node-types", "list", "--mine", "-o", "json").stdout)
    assert [(t["name"], t["version"]) for t in mine] == [("cli.greet", 2)]
    every = json.loads(cli.ok("node-types", "list", "-o", "json").stdout)
    assert {t["name"]: t["source"] for t in every}["cli.greet"] == "account"
    versions = json.loads(cli.ok("node-types", "versions", "cli.greet", "-o", "json").stdout)
    assert [(v["version"], v["message"]) for v in versions] == [(2, "less formal"), (1, None)]
    assert "less formal" in cli.ok("node-types", "versions", "cli.greet").stdout

    # What get prints pushes back as the same version; --version reads an older one.
    fetched = cli.ok("node-types", "get", "cli.greet").stdout
    assert "script: |\n" in fetched
    assert "return `Hi, ${params.name}!`;" in fetched
    again = tmp_path / "again.yaml"
    again.write_text(fetched)
    assert "unchanged" in cli.ok("node-types", "push", str(again)).stderr
    assert "Hello" in cli.ok("node-types", "get", "cli.greet", "--version", "1").stdout

    flow = tmp_path / "flow.yaml"
    flow.write_text(FLOW)
    cli.ok("flows", "push", str(flow))
    done = cli.ok("flows", "run", "Greets from the CLI", "-i", '{"who": "Bo"}', "--wait",
                  "-o", "json")  # fmt: skip
    assert json.loads(done.stdout)["output"] == "Hi, Bo!"

    # Another account: no such type, and a flow using it is refused.
    assert admin_cli("node-types", "get", "cli.greet").returncode == 3
    refused = admin_cli("flows", "validate", str(flow))
    assert refused.returncode == 1
    assert "unknown node type 'cli.greet'" in refused.stderr

    broken = tmp_path / "broken.yaml"
    broken.write_text("name: cli.broken\nscript: ''\nactions: [default]\n")
    answer = cli("node-types", "push", str(broken))
    assert answer.returncode == 1
    assert "script: a non-empty JavaScript function body" in answer.stderr
    assert "actions[0]" in answer.stderr
    assert "Traceback" not in answer.stderr
    assert cli("node-types", "push", str(tmp_path / "missing.yaml")).returncode == 2

    assert cli("node-types", "delete", "cli.greet").returncode == 2  # no terminal to confirm
    cli.ok("node-types", "delete", "cli.greet", "--yes")
    assert cli("node-types", "get", "cli.greet").returncode == 3
    assert json.loads(cli.ok("node-types", "list", "--mine", "-o", "json").stdout) == []
