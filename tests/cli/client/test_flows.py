"""``flowrunner flows`` against a real server: create, push, get, update, versions, diff,
restore, validate, delete, and ``flows run`` without following."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.client.conftest import Cli
from tests.cli.client.flows import failing, steps

pytestmark = pytest.mark.slow

BROKEN = """metadata: {name: Broken on the server}
nodes:
  a:
    type: no.such.type
"""


def test_versions_diff_restore_get_update_and_delete(admin_cli: Cli, tmp_path: Path) -> None:
    cli = admin_cli
    flow = tmp_path / "v.yaml"
    flow.write_text(steps("Versioned"))
    created = json.loads(cli.ok("flows", "create", str(flow), "--tag", "cli", "-o", "json").stdout)
    assert created["tags"] == ["cli"]
    unchanged = cli.ok("flows", "push", str(flow))
    assert "unchanged" in unchanged.stderr
    flow.write_text(steps("Versioned", nap=0.01))
    assert "version 2" in cli.ok("flows", "push", str(flow)).stderr
    by_id = cli.ok("flows", "push", str(flow), "--flow", created["id"])  # matched by id
    assert "unchanged" in by_id.stderr

    versions = json.loads(cli.ok("flows", "versions", "Versioned", "-o", "json").stdout)
    assert [v["number"] for v in versions] == [2, 1]
    diff = cli.ok("flows", "diff", "Versioned", "1", "2").stdout
    assert "-  nap: {type: delay, params: {duration: 0.05}" in diff
    assert "+  nap: {type: delay, params: {duration: 0.01}" in diff

    restored = json.loads(cli.ok("flows", "restore", created["id"], "1", "-o", "json").stdout)
    assert restored["version"] == 3
    assert cli.ok("flows", "get", "versioned").stdout == steps("Versioned")  # any case
    assert cli.ok("flows", "get", "Versioned", "--version", "2").stdout == steps(
        "Versioned", nap=0.01
    )

    cli.ok("flows", "update", "Versioned", "--description", "from the CLI", "--tag", "b")
    listed = json.loads(cli.ok("flows", "list", "--tag", "b", "-o", "json").stdout)
    assert [(f["name"], f["description"]) for f in listed] == [("Versioned", "from the CLI")]
    named = json.loads(cli.ok("flows", "list", "--name", "ERSION", "-o", "json").stdout)
    assert "Versioned" in [f["name"] for f in named]
    described = cli.ok("flows", "list", "--description", "the CLI", "-o", "json").stdout
    assert [f["name"] for f in json.loads(described)] == ["Versioned"]

    refused = cli("flows", "delete", "Versioned")  # no terminal to confirm on
    assert refused.returncode == 2
    cli.ok("flows", "delete", "Versioned", "--yes")
    assert cli("flows", "get", "Versioned").returncode == 3


def test_push_with_a_message_stores_it_and_versions_show_it(admin_cli: Cli, tmp_path: Path) -> None:
    cli = admin_cli
    flow = tmp_path / "m.yaml"
    flow.write_text(steps("Messaged"))
    cli.ok("flows", "push", str(flow), "--message", "first cut")
    flow.write_text(steps("Messaged", nap=0.02))
    cli.ok("flows", "push", str(flow), "-m", "shorter nap: ünïcode ok")
    flow.write_text(steps("Messaged", nap=0.03))
    cli.ok("flows", "update", "Messaged", str(flow))  # no message: none stored
    cli.ok("flows", "restore", "Messaged", "1")

    versions = json.loads(cli.ok("flows", "versions", "Messaged", "-o", "json").stdout)
    assert [(v["number"], v["message"]) for v in versions] == [
        (4, "restored version 1"),
        (3, None),
        (2, "shorter nap: ünïcode ok"),
        (1, "first cut"),
    ]
    table = cli.ok("flows", "versions", "Messaged").stdout
    assert "MESSAGE" in table
    assert "shorter nap: ünïcode ok" in table
    assert "first cut" in table

    too_long = cli("flows", "push", str(flow.with_name("x.yaml")), "-m", "x" * 1001)
    assert too_long.returncode == 2  # the file does not exist: a usage error first
    flow.write_text(steps("Messaged", nap=0.04))
    refused = cli("flows", "push", str(flow), "-m", "x" * 1001)
    assert refused.returncode == 1, refused.stderr
    assert "message" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert cli("flows", "update", "Messaged", "-m", "alone").returncode == 2


def test_an_invalid_flow_is_refused_with_its_problems_at_their_lines(
    admin_cli: Cli, tmp_path: Path
) -> None:
    flow = tmp_path / "broken.yaml"
    flow.write_text(BROKEN)
    checked = admin_cli("flows", "validate", str(flow))
    assert checked.returncode == 1
    assert f"{flow}:4:" in checked.stderr
    assert "no.such.type" in checked.stderr
    pushed = admin_cli("flows", "push", str(flow))
    assert pushed.returncode == 1
    assert f"{flow}:4:" in pushed.stderr
    assert "Traceback" not in pushed.stderr
    good = tmp_path / "good.yaml"
    good.write_text(steps("Valid on the server"))
    assert "valid" in admin_cli.ok("flows", "validate", str(good)).stderr


def test_run_without_waiting_prints_the_id_and_an_idempotency_key_returns_it_again(
    admin_cli: Cli, tmp_path: Path
) -> None:
    flow = tmp_path / "idem.yaml"
    flow.write_text(steps("Idempotent run"))
    admin_cli.ok("flows", "push", str(flow))
    args = ("flows", "run", "Idempotent run", "-i", '{"name": "x"}', "--idempotency-key", "k-1")
    first = admin_cli.ok(*args).stdout.strip()
    second = admin_cli.ok(*args).stdout.strip()
    assert first == second
    assert len(first) >= 16


def test_a_failed_run_exits_1_with_the_node_and_message(admin_cli: Cli, tmp_path: Path) -> None:
    flow = tmp_path / "fail.yaml"
    flow.write_text(failing("Fails on purpose"))
    admin_cli.ok("flows", "push", str(flow))
    followed = admin_cli("flows", "run", "Fails on purpose", "--follow")
    assert followed.returncode == 1
    assert "✓ ok" in followed.stderr
    assert "✗ boom failed: no luck" in followed.stderr
    waited = admin_cli("flows", "run", "Fails on purpose", "--wait", "-o", "json")
    assert waited.returncode == 1
    record = json.loads(waited.stdout)
    assert (record["status"], record["error"]["node_id"]) == ("failed", "boom")


def test_input_from_a_file_and_a_pinned_version(admin_cli: Cli, tmp_path: Path) -> None:
    flow = tmp_path / "pinned.yaml"
    flow.write_text(steps("Pinned"))
    admin_cli.ok("flows", "push", str(flow))
    flow.write_text(steps("Pinned", nap=0.01))
    admin_cli.ok("flows", "push", str(flow))
    data = tmp_path / "input.json"
    data.write_text('{"name": "Bo"}')
    done = admin_cli.ok("flows", "run", "Pinned", "-i", f"@{data}", "--version", "1", "--wait",
                        "-o", "json")  # fmt: skip
    record = json.loads(done.stdout)
    assert (record["flow_version"], record["input"]) == (1, {"name": "Bo"})
