"""``flowrunner triggers`` as typed, against a real server: a pushed flow's declared webhook
is listed, shown with its URL, disabled (its URL answers 404), enabled and deleted."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from tests.cli.client.conftest import Cli
from tests.conftest import HANG_GUARD

pytestmark = pytest.mark.slow

FLOW = """metadata: {name: Hooked}
triggers:
  - webhook: {name: inbox}
  - schedule: {cron: "0 9 * * 1", timezone: Europe/Berlin}
nodes:
  a: {type: log, params: {message: hi}}
"""


def test_triggers_list_show_disable_enable_delete(user_cli: Cli, tmp_path: Path) -> None:
    cli = user_cli
    flow_file = tmp_path / "hooked.yaml"
    flow_file.write_text(FLOW)
    cli.ok("flows", "push", str(flow_file))
    table = cli.ok("triggers", "list", "--flow", "Hooked").stdout
    assert "inbox" in table
    assert "0 9 * * 1" in table
    listed = json.loads(cli.ok("triggers", "list", "-o", "json").stdout)
    hook = next(t for t in listed if t["kind"] == "webhook")
    shown = json.loads(cli.ok("triggers", "show", hook["id"], "-o", "json").stdout)
    url = cli.url + shown["url"]
    assert httpx.post(url, json={}, timeout=HANG_GUARD).status_code == 202

    assert "disabled webhook trigger" in cli.ok("triggers", "disable", hook["id"]).stderr
    assert httpx.post(url, json={}, timeout=HANG_GUARD).status_code == 404
    cli.ok("triggers", "enable", hook["id"])
    assert httpx.post(url, json={}, timeout=HANG_GUARD).status_code == 202
    cli.ok("triggers", "delete", hook["id"])
    missing = cli("triggers", "show", hook["id"])
    assert missing.returncode != 0
    assert "not found" in missing.stderr
