"""``flowrunner secrets`` as typed, beyond the main path of test_workflow: the value from
stdin or ``--value``, a JSON import that adds and changes, an import refused as a whole, and
an export to stdout."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.client.conftest import Cli

pytestmark = pytest.mark.slow


def _names(cli: Cli) -> list[str]:
    return [s["key"] for s in json.loads(cli.ok("secrets", "list", "-o", "json").stdout)]


def test_set_from_stdin_or_value_import_json_all_or_nothing_and_export_to_stdout(
    user_cli: Cli, tmp_path: Path
) -> None:
    cli = user_cli
    piped = cli.ok("secrets", "set", "FROM_STDIN", input="piped-value-1\n")
    assert "piped-value-1" not in piped.stdout + piped.stderr
    cli.ok("secrets", "set", "FROM_FLAG", "--value", "flag-value-1")
    assert cli.ok("secrets", "get", "FROM_STDIN", "--reveal").stdout == "piped-value-1\n"

    changes = tmp_path / "changes.json"
    changes.write_text(json.dumps({"FROM_STDIN": "changed-value-1", "SMTP": {"host": "h"}}))
    imported = cli.ok("secrets", "import", str(changes))
    assert "added 1: SMTP" in imported.stderr
    assert "changed 1: FROM_STDIN" in imported.stderr

    bad_name = tmp_path / "bad.env"
    bad_name.write_text("GOOD_ONE=value-1\n9BAD=value-2\n")
    refused = cli("secrets", "import", str(bad_name))
    assert refused.returncode == 2  # read and refused here: nothing sent
    assert "9BAD" in refused.stderr
    too_many = tmp_path / "many.env"
    too_many.write_text("".join(f"BULK_{i}=value-{i}\n" for i in range(1001)))
    refused = cli("secrets", "import", str(too_many))
    assert refused.returncode == 1  # refused by the server, as a whole
    assert "1000" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert _names(cli) == ["FROM_FLAG", "FROM_STDIN", "SMTP"]  # none of either file

    exported = cli.ok("secrets", "export", "--format", "json")
    assert json.loads(exported.stdout) == {
        "FROM_FLAG": "flag-value-1",
        "FROM_STDIN": "changed-value-1",
        "SMTP": {"host": "h"},
    }
    assert "plain text" in exported.stderr
    existing = tmp_path / "existing.env"
    existing.write_text("keep me\n")
    assert cli("secrets", "export", "--file", str(existing)).returncode == 2
    assert existing.read_text() == "keep me\n"
