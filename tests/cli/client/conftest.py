"""The client commands as a user types them: ``python -m flowrunner ...`` in a subprocess,
against one real ``flowrunner serve`` started for the package (tests/e2e/server.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.conftest import HANG_GUARD
from tests.e2e.server import ADMIN, Server
from tests.e2e.test_plugins import install_example_package

# Variables of a developer's shell that would point the CLI elsewhere.
USER_PASSWORD = "user-password-1"
_CLIENT_ENV = ("FLOWRUNNER_URL", "FLOWRUNNER_TOKEN", "FLOWRUNNER_PROFILE", "FLOWRUNNER_CONFIG")


@pytest.fixture(scope="package")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    install_example_package()  # its plugin, for `plugins`: entry points are read at the start
    running = Server(tmp_path_factory.mktemp("cli-server"))
    running.start()
    try:
        yield running
    finally:
        running.stop()


@dataclass
class Cli:
    """Runs ``flowrunner`` with its own profiles file (``config``) in a clean environment."""

    config: Path
    url: str
    env: dict[str, str] = field(default_factory=dict)

    def __call__(
        self, *args: str, input: str | None = None, env: Mapping[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        base = {k: v for k, v in os.environ.items() if k not in _CLIENT_ENV}
        environment = {**base, "FLOWRUNNER_CLI_CONFIG": str(self.config), **self.env, **(env or {})}
        return subprocess.run(
            [sys.executable, "-m", "flowrunner", *args],
            input=input,
            capture_output=True,
            text=True,
            env=environment,
            timeout=HANG_GUARD,
            check=False,
        )

    def ok(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run and insist on exit 0 (the output is in the failure message otherwise)."""
        done = self(*args, input=input)
        assert done.returncode == 0, f"{args}: {done.returncode}\n{done.stdout}\n{done.stderr}"
        return done

    def login(self, username: str = ADMIN[0], password: str = ADMIN[1], *extra: str) -> None:
        self.ok("login", "--url", self.url, "-u", username, "--password-stdin", *extra,
                input=password + "\n")  # fmt: skip


@pytest.fixture
def cli(server: Server, tmp_path: Path) -> Cli:
    """A CLI with no profile yet (not logged in)."""
    return Cli(tmp_path / "config" / "config.toml", server.url)


@pytest.fixture
def admin_cli(cli: Cli) -> Cli:
    """A CLI logged in as the server's admin."""
    cli.login()
    return cli


@pytest.fixture
def user_cli(server: Server, tmp_path: Path) -> Cli:
    """A CLI logged in as an account of its own: nothing another test stored shows in it."""
    username = f"user-{uuid.uuid4().hex[:12]}"
    response = httpx.post(
        f"{server.url}/api/v1/accounts",
        json={"username": username, "password": USER_PASSWORD},
        auth=ADMIN,
        timeout=HANG_GUARD,
    )
    response.raise_for_status()
    user = Cli(tmp_path / "user" / "config.toml", server.url)
    user.login(username, USER_PASSWORD)
    return user
