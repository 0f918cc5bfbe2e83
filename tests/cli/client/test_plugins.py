"""``flowrunner plugins`` and ``flowrunner node-types`` against a real server."""

from __future__ import annotations

import json

from tests.cli.client.conftest import Cli


def test_anyone_lists_node_types_and_plugins(user_cli: Cli) -> None:
    types = json.loads(user_cli.ok("node-types", "list", "-o", "json").stdout)
    by_name = {t["name"]: t for t in types}
    assert by_name["log"]["source"] == "builtin"
    plugins = json.loads(user_cli.ok("plugins", "list", "-o", "json").stdout)
    assert isinstance(plugins, list)


def test_only_admins_reload_and_disable(user_cli: Cli, admin_cli: Cli) -> None:
    refused = user_cli("plugins", "reload")
    assert refused.returncode != 0
    assert "admin only" in refused.stderr
    done = admin_cli.ok("plugins", "reload")
    assert "reloaded (generation" in done.stderr
    missing = admin_cli("plugins", "disable", "no-such-plugin")
    assert missing.returncode != 0
    assert "not found" in missing.stderr
