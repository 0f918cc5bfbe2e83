"""``login``, ``logout``, ``whoami``, ``profile`` and the connection overrides, for real."""

from __future__ import annotations

import json
import tomllib

import pytest

from tests.cli.client.conftest import Cli
from tests.e2e.server import Server, free_port

pytestmark = pytest.mark.slow


def test_a_wrong_password_saves_nothing_and_exits_3(cli: Cli) -> None:
    refused = cli("login", "--url", cli.url, "-u", "admin", "--password-stdin", input="nope\n")
    assert refused.returncode == 3
    assert "Traceback" not in refused.stderr
    assert refused.stderr.startswith("error: ")
    assert not cli.config.exists()


def test_logout_revokes_the_token_and_a_second_login_replaces_the_first(cli: Cli) -> None:
    cli.login()
    first = tomllib.loads(cli.config.read_text())["profiles"]["default"]
    tokens = json.loads(cli.ok("tokens", "list", "-o", "json").stdout)
    [mine] = [t for t in tokens if t["id"] == first["token_id"]]
    assert mine["name"].startswith("flowrunner-cli@")  # a token made for this machine
    cli.login()
    second = tomllib.loads(cli.config.read_text())["profiles"]["default"]
    assert first["token_id"] != second["token_id"]
    old = cli("whoami", "--token", first["token"])
    assert old.returncode == 3  # the first login's token was revoked by the second

    cli.ok("logout")
    profile = tomllib.loads(cli.config.read_text())["profiles"]["default"]
    assert "token" not in profile
    assert profile["url"] == cli.url  # the server is remembered for the next login
    revoked = cli("whoami", "--token", second["token"])
    assert revoked.returncode == 3
    assert cli("whoami").returncode == 3  # not logged in: says so
    assert "flowrunner login" in cli("whoami").stderr


def test_profiles_list_use_and_per_call_overrides(cli: Cli, server: Server) -> None:
    cli.login()
    cli.login("admin", "admin-password-1", "--profile", "second")
    rows = json.loads(cli.ok("profile", "list", "-o", "json").stdout)
    assert [(r["name"], r["current"], r["logged_in"]) for r in rows] == [
        ("default", False, True),
        ("second", True, True),
    ]
    assert "token" not in json.dumps(rows).replace("logged_in", "")
    cli.ok("profile", "use", "default")
    assert json.loads(cli.ok("whoami", "-o", "json").stdout)["profile"] == "default"
    assert (
        json.loads(cli.ok("whoami", "--profile", "second", "-o", "json").stdout)["profile"]
        == "second"
    )
    assert cli("profile", "use", "nope").returncode == 2

    token = tomllib.loads(cli.config.read_text())["profiles"]["default"]["token"]
    elsewhere = Cli(cli.config.with_name("other.toml"), cli.url)
    by_env = elsewhere("whoami", "-o", "json", env={"FLOWRUNNER_URL": server.url,
                                                     "FLOWRUNNER_TOKEN": token})  # fmt: skip
    assert json.loads(by_env.stdout)["username"] == "admin"
    by_flags = elsewhere.ok("whoami", "--url", server.url, "--token", token, "-o", "yaml")
    assert "username: admin" in by_flags.stdout
    by_config = elsewhere.ok("whoami", "--config", str(cli.config), "-o", "json")
    assert json.loads(by_config.stdout)["profile"] == "default"  # the file named, not the env's
    listed = elsewhere.ok("profile", "list", "--config", str(cli.config), "-o", "json").stdout
    assert [r["name"] for r in json.loads(listed)] == ["default", "second"]


def test_an_unreachable_server_is_one_line_and_exit_1(cli: Cli) -> None:
    down = f"http://127.0.0.1:{free_port()}"
    failed = cli("flows", "list", "--url", down, "--token", "frt_x")
    assert failed.returncode == 1
    [line] = failed.stderr.strip().splitlines()
    assert line.startswith(f"error: cannot reach the server at {down}")


def test_admin_commands_are_refused_to_a_regular_account(admin_cli: Cli) -> None:
    admin_cli.ok("accounts", "create", "carol", "--password-stdin", input="carol-password-1\n")
    accounts = json.loads(admin_cli.ok("accounts", "list", "-o", "json").stdout)
    assert "carol" in [a["username"] for a in accounts]
    carol = Cli(admin_cli.config.with_name("carol.toml"), admin_cli.url)
    carol.login("carol", "carol-password-1")
    refused = carol("accounts", "list")
    assert refused.returncode == 3
    assert "admin" in refused.stderr
    assert carol("audit", "list", "--all").returncode == 3
    own = json.loads(carol.ok("audit", "list", "-o", "json").stdout)
    assert own  # carol's own records: at least her logins' token creations

    disabled = json.loads(admin_cli.ok("accounts", "disable", "carol", "-o", "json").stdout)
    assert disabled["disabled"] is True
    assert carol("whoami").returncode == 3
    admin_cli.ok("accounts", "enable", "carol")
    assert carol.ok("whoami", "-o", "json")


def test_tokens_create_list_and_revoke(admin_cli: Cli) -> None:
    created = json.loads(
        admin_cli.ok("tokens", "create", "ci", "--expires-in", "30d", "-o", "json").stdout
    )
    assert created["token"].startswith("frt_")
    assert created["expires_at"]
    listed = json.loads(admin_cli.ok("tokens", "list", "-o", "json").stdout)
    assert "token" not in {k for t in listed for k in t}
    assert created["id"] in [t["id"] for t in listed]
    works = admin_cli.ok("whoami", "--token", created["token"], "-o", "json")
    assert json.loads(works.stdout)["username"] == "admin"
    admin_cli.ok("tokens", "revoke", created["id"])
    assert admin_cli("whoami", "--token", created["token"]).returncode == 3
    assert admin_cli("tokens", "create", "x", "--expires-in", "soon").returncode == 2
