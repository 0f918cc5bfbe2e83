"""The profiles file: round trip, mode 0600, and which values a command ends up using."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from flowrunner.cli.client.config import ConfigFile, Profile, default_path
from flowrunner.cli.client.errors import UsageProblem
from flowrunner.cli.client.output import Output
from flowrunner.cli.client.session import open_session


def test_profiles_round_trip_through_a_file_readable_by_the_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "config.toml"
    file = ConfigFile(path, current="prod")
    file.profiles["prod"] = Profile(url="https://fr.example.test", token='frt_"q\\', token_id="1")
    file.profiles["odd name"] = Profile(url="http://127.0.0.1:8080", output="json")
    file.save()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = ConfigFile.load(path)
    assert again.current == "prod"
    assert again.profiles == file.profiles


def test_an_existing_file_with_loose_permissions_is_tightened(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("")
    path.chmod(0o644)
    ConfigFile(path, profiles={"a": Profile(url="http://x", token="t")}).save()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_missing_file_is_no_profiles_and_a_broken_one_a_usage_error(tmp_path: Path) -> None:
    assert ConfigFile.load(tmp_path / "none.toml").profiles == {}
    broken = tmp_path / "broken.toml"
    broken.write_text("[profiles.a\n")
    with pytest.raises(UsageProblem, match="not valid TOML") as caught:
        ConfigFile.load(broken)
    assert caught.value.exit_code == 2


def test_the_default_path_follows_xdg_and_the_override(tmp_path: Path) -> None:
    assert default_path({"XDG_CONFIG_HOME": str(tmp_path)}) == (
        tmp_path / "flowrunner" / "config.toml"
    )
    override = {"FLOWRUNNER_CLI_CONFIG": str(tmp_path / "x.toml"), "XDG_CONFIG_HOME": "/nope"}
    assert default_path(override) == tmp_path / "x.toml"


@pytest.fixture
def two_profiles(tmp_path: Path) -> Path:
    path = tmp_path / "config.toml"
    file = ConfigFile(path, current="prod")
    file.profiles["prod"] = Profile(url="https://prod.test", token="prod-token", output="yaml")
    file.profiles["dev"] = Profile(url="http://dev.test", token="dev-token")
    file.save()
    return path


def test_flags_beat_the_environment_which_beats_the_profile(two_profiles: Path) -> None:
    plain = open_session(config=two_profiles, environ={})
    assert (plain.url, plain.token, plain.output) == (
        "https://prod.test",
        "prod-token",
        Output.yaml,
    )
    env = {"FLOWRUNNER_PROFILE": "dev"}
    assert open_session(config=two_profiles, environ=env).token == "dev-token"
    env = {"FLOWRUNNER_TOKEN": "env-token"}
    assert open_session(config=two_profiles, environ=env).token == "env-token"
    flagged = open_session(config=two_profiles, token="flag-token", output=Output.json, environ=env)
    assert (flagged.token, flagged.output) == ("flag-token", Output.json)


def test_a_profile_token_is_never_sent_to_another_server(two_profiles: Path) -> None:
    elsewhere = open_session(config=two_profiles, url="https://evil.test", environ={})
    assert elsewhere.url == "https://evil.test"
    assert elsewhere.token is None
    same = open_session(config=two_profiles, url="https://prod.test/", environ={})
    assert same.token == "prod-token"


def test_an_unknown_profile_is_a_usage_error_naming_the_known_ones(two_profiles: Path) -> None:
    with pytest.raises(UsageProblem, match="dev, prod"):
        open_session(config=two_profiles, profile="staging", environ={})


def test_no_server_and_no_token_say_what_to_do(tmp_path: Path) -> None:
    empty = open_session(config=tmp_path / "none.toml", environ={})
    with pytest.raises(UsageProblem, match="flowrunner login --url"):
        empty.api  # noqa: B018 - the property raises
    no_token = open_session(config=tmp_path / "none.toml", url="http://x.test", environ={})
    with pytest.raises(Exception, match="not logged in") as caught:
        no_token.api  # noqa: B018
    assert getattr(caught.value, "exit_code", None) == 3
