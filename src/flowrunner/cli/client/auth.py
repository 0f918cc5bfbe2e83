"""``login``, ``logout``, ``whoami`` and ``profile``: who the CLI is on which server.

``login`` sends the password once, over HTTP Basic, to create an API token named for this
machine (``flowrunner-cli@<host>``); the profile keeps that token and its id, never the
password. ``logout`` revokes the token on the server, then forgets it.
"""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

import typer
from rich.markup import escape

from flowrunner.cli.client.command import command
from flowrunner.cli.client.config import ConfigFile, Profile, default_path
from flowrunner.cli.client.errors import ClientError, UsageProblem
from flowrunner.cli.client.http import Api, segment
from flowrunner.cli.client.output import (
    Column,
    Output,
    emit_list,
    emit_record,
    print_data,
    stderr_console,
)
from flowrunner.cli.client.session import Session, same_server

profile_app = typer.Typer(help="Profiles: the servers you logged in to.", no_args_is_help=True)

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", help="Profiles file (env FLOWRUNNER_CLI_CONFIG).", show_default=False),
]


def token_name() -> str:
    return f"flowrunner-cli@{socket.gethostname()}"[:100]


def login(
    url: Annotated[
        str | None, typer.Option(help="Server URL (default: the profile's, or FLOWRUNNER_URL).")
    ] = None,
    username: Annotated[
        str | None, typer.Option("--username", "-u", help="Default: asked for.")
    ] = None,
    profile: Annotated[
        str | None, typer.Option(help="Save as this profile (default: the current one).")
    ] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from stdin (scripts).")
    ] = False,
    config: ConfigOption = None,
) -> None:
    """Log in to a server: asks for the password (hidden) and saves a token for this machine.

    The profile becomes the current one; its file is created with mode 0600.
    """
    file = ConfigFile.load(config.expanduser() if config else default_path())
    name = profile or os.environ.get("FLOWRUNNER_PROFILE") or file.current or "default"
    existing = file.profiles.get(name)
    server = url or os.environ.get("FLOWRUNNER_URL") or (existing.url if existing else None)
    if not server:
        raise UsageProblem("which server? give --url, e.g. --url http://127.0.0.1:8080")
    server = server.rstrip("/")
    if not server.startswith(("http://", "https://")):
        raise UsageProblem(f"--url must start with http:// or https://, not {server!r}")
    if _in_clear(server):
        stderr_console().print(
            "[yellow]warning:[/] http:// to another machine: the password and the token "
            "cross the network unencrypted (use https://)"
        )
    known = existing if existing is not None and same_server(existing.url, server) else None
    if username is None:
        default = known.username if known is not None else None
        username = typer.prompt("Username", default=default)
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True)
    with Api(server, auth=(username, password)) as api:
        created = api.post("/tokens", json={"name": token_name()})
    with Api(server, created["token"]) as api:
        me = api.get("/accounts/me")
    if known is not None and known.token and known.token_id:
        _revoke_quietly(server, known.token, known.token_id)  # a second login replaces it
    file.profiles[name] = Profile(
        url=server,
        username=me["username"],
        token=created["token"],
        token_id=created["id"],
        output=existing.output if existing is not None else None,
    )
    file.current = name
    file.save()
    role = " (admin)" if me.get("is_admin") else ""
    stderr_console().print(
        f"logged in to {escape(server)} as [bold]{escape(me['username'])}[/]{role}; "
        f"profile [bold]{escape(name)}[/] saved in {escape(str(file.path))}"
    )


def _in_clear(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    return url.startswith("http://") and host not in ("localhost", "127.0.0.1", "::1")


def _revoke_quietly(server: str, token: str, token_id: str) -> bool:
    """Revoke a token with itself; False when it no longer worked anyway."""
    try:
        with Api(server, token) as api:
            api.json("DELETE", f"/tokens/{segment(token_id)}")
    except ClientError as exc:
        if exc.status in (401, 404):
            return False
        raise
    return True


def logout(session: Session) -> None:
    """Revoke the profile's token on the server and forget it here."""
    profile = session.profile
    if profile is None or not profile.token:
        raise UsageProblem(f"profile {session.profile_name!r} is not logged in")
    err = stderr_console()
    if profile.token_id and profile.url:
        if not _revoke_quietly(profile.url, profile.token, profile.token_id):
            err.print("[dim]the token no longer worked on the server[/]")
    else:
        err.print(
            "[yellow]warning:[/] this token was not made by `flowrunner login`: it stays "
            "valid on the server until revoked there (flowrunner tokens revoke ID)"
        )
    profile.token = profile.token_id = None
    session.config.save()
    err.print(
        f"logged out of {escape(profile.url or '?')} (profile {escape(session.profile_name)})"
    )


def whoami(session: Session) -> None:
    """Show the account, server and profile the commands use."""
    me = dict(session.api.get("/accounts/me"))
    me["server"] = session.api.url
    me["profile"] = session.profile_name
    fields = [
        Column("USERNAME", "username"),
        Column("ID", "id", no_wrap=True),
        Column("ADMIN", "is_admin"),
        Column("SERVER", "server"),
        Column("PROFILE", "profile"),
    ]
    emit_record(me, session.output, fields=fields)


def _profiles(file: ConfigFile) -> list[dict[str, Any]]:
    return [
        {
            "name": name,
            "current": name == (file.current or "default"),
            "url": p.url,
            "username": p.username,
            "logged_in": bool(p.token),
        }
        for name, p in sorted(file.profiles.items())
    ]


@profile_app.command("list", epilog="Example: flowrunner profile list -o json")
def profile_list(
    config: ConfigOption = None,
    output: Annotated[
        Output, typer.Option("--output", "-o", help="table, json or yaml.")
    ] = Output.table,
) -> None:
    """List the profiles (never their tokens); * marks the current one."""
    file = ConfigFile.load(config.expanduser() if config else default_path())
    rows = _profiles(file)
    if output is not Output.table:
        print_data(rows, output)
        return
    columns = [
        Column("", "current", lambda v: "*" if v else ""),
        Column("NAME", "name"),
        Column("URL", "url"),
        Column("USERNAME", "username"),
        Column("LOGGED IN", "logged_in"),
    ]
    emit_list(rows, columns, output, empty=f"no profiles in {file.path}: run flowrunner login")


@profile_app.command("use", epilog="Example: flowrunner profile use staging")
def profile_use(
    name: Annotated[str, typer.Argument(help="The profile to make current.")],
    config: ConfigOption = None,
) -> None:
    """Make a profile the current one."""
    file = ConfigFile.load(config.expanduser() if config else default_path())
    if name not in file.profiles:
        known = ", ".join(sorted(file.profiles)) or "none yet"
        raise UsageProblem(f"no profile {name!r} in {file.path} (profiles: {known})")
    file.current = name
    file.save()
    stderr_console().print(f"now using profile [bold]{escape(name)}[/] ({file.profiles[name].url})")


@profile_app.command(
    "remove", epilog="Example: flowrunner logout --profile old; flowrunner profile remove old"
)
def profile_remove(
    name: Annotated[str, typer.Argument(help="The profile to forget.")],
    config: ConfigOption = None,
) -> None:
    """Forget a profile (run `logout` first to revoke its token on the server)."""
    file = ConfigFile.load(config.expanduser() if config else default_path())
    removed = file.profiles.pop(name, None)
    if removed is None:
        raise UsageProblem(f"no profile {name!r} in {file.path}")
    if file.current == name:
        file.current = None
    file.save()
    note = (
        "; its token stays valid until revoked (flowrunner tokens revoke)" if removed.token else ""
    )
    stderr_console().print(f"removed profile {escape(name)}{escape(note)}")


def register(app: typer.Typer) -> None:
    app.command("login", epilog="Example: flowrunner login --url http://127.0.0.1:8080 -u admin")(
        login
    )
    command(app, "logout", example="flowrunner logout")(logout)
    command(app, "whoami", example="flowrunner whoami --profile staging")(whoami)
    app.add_typer(profile_app, name="profile")
