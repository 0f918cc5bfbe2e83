"""``flowrunner webhooks`` against a real server, as typed: create (the secret printed once),
list, test, the delivery with its attempt, redeliver, rotate the secret, delete."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from tests.cli.client.conftest import Cli
from tests.conftest import HANG_GUARD

pytestmark = pytest.mark.slow

# A name that never resolves: each attempt fails (recorded) and is retried later.
URL = "https://hooks.invalid/in"


def _attempted(cli: Cli, delivery_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + HANG_GUARD  # a hang guard only
    while True:
        found: dict[str, Any] = json.loads(
            cli.ok("webhooks", "delivery", delivery_id, "-o", "json").stdout
        )
        if found["attempt_history"] or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def test_create_list_test_inspect_redeliver_rotate_and_delete(user_cli: Cli) -> None:
    cli = user_cli
    created = cli.ok("webhooks", "create", URL, "--event", "execution.failed")
    secret = created.stdout.strip()
    assert secret.startswith("whsec_")
    assert "shown only this time" in created.stderr
    [endpoint] = json.loads(cli.ok("webhooks", "list", "-o", "json").stdout)
    assert (endpoint["url"], endpoint["events"]) == (URL, ["execution.failed"])
    assert secret not in cli.ok("webhooks", "list").stdout

    sent = json.loads(cli.ok("webhooks", "test", endpoint["id"], "-o", "json").stdout)
    found = _attempted(cli, sent["id"])
    attempts = found["attempt_history"]  # one, or more if a retry came due meanwhile
    assert attempts
    for attempt in attempts:
        assert attempt["status_code"] is None
        assert "hooks.invalid" in attempt["error"]
    table = cli.ok("webhooks", "delivery", sent["id"]).stdout
    assert "webhook.test" in table

    again = json.loads(cli.ok("webhooks", "redeliver", sent["id"], "-o", "json").stdout)
    assert again["id"] != sent["id"]
    listed = json.loads(cli.ok("webhooks", "deliveries", endpoint["id"], "-o", "json").stdout)
    assert {d["id"] for d in listed} == {sent["id"], again["id"]}

    rotated = cli.ok("webhooks", "rotate-secret", endpoint["id"])
    assert rotated.stdout.strip().startswith("whsec_")
    assert rotated.stdout.strip() != secret
    cli.ok("webhooks", "delete", endpoint["id"])
    assert json.loads(cli.ok("webhooks", "list", "-o", "json").stdout) == []
    missing = cli("webhooks", "delete", endpoint["id"])
    assert missing.returncode != 0
    assert "not found" in missing.stderr
