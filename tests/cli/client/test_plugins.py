"""``flowrunner plugins`` and ``flowrunner node-types`` against a real server."""

from __future__ import annotations

import json
from pathlib import Path

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


def test_an_admin_disables_and_enables_the_installed_package_plugin(
    user_cli: Cli, admin_cli: Cli, tmp_path: Path
) -> None:
    acme = json.loads(user_cli.ok("plugins", "show", "acme", "-o", "json").stdout)
    assert (acme["kind"], acme["status"]) == ("package", "active")
    flow = tmp_path / "acme.yaml"
    flow.write_text(
        "metadata: {name: Acme slug}\nnodes:\n  s: {type: acme.text.slug, params: {text: Hi}}\n"
    )
    admin_cli.ok("plugins", "disable", "acme")
    try:
        shown = json.loads(user_cli.ok("plugins", "show", "acme", "-o", "json").stdout)
        assert (shown["status"], shown["node_types"]) == ("disabled", [])
        refused = user_cli("flows", "validate", str(flow))
        assert refused.returncode == 1
        assert "belongs to plugin 'acme', which is disabled" in refused.stderr
    finally:
        admin_cli.ok("plugins", "enable", "acme")
    assert json.loads(user_cli.ok("plugins", "show", "acme", "-o", "json").stdout)["status"] == (
        "active"
    )
    assert user_cli("flows", "validate", str(flow)).returncode == 0
