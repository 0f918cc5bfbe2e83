"""``flowrunner accounts``: accounts on a server (admins) — list, create, disable, enable.

The first admin is made locally, on the server's store: ``flowrunner admin accounts create
NAME --admin`` (or ``FLOWRUNNER_ADMIN_USERNAME``/``_PASSWORD`` at start); the API creates
regular accounts only.
"""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer
from rich.markup import escape

from flowrunner.cli.client.command import command
from flowrunner.cli.client.errors import NOT_FOUND_OR_AUTH, ClientError
from flowrunner.cli.client.http import Api, segment
from flowrunner.cli.client.output import (
    Column,
    Output,
    emit_list,
    emit_record,
    print_data,
    stderr_console,
    when,
)
from flowrunner.cli.client.session import Session

accounts_app = typer.Typer(help="Accounts on a server (admin).", no_args_is_help=True)

COLUMNS = [
    Column("ID", "id", no_wrap=True),
    Column("USERNAME", "username"),
    Column("ADMIN", "is_admin"),
    Column("DISABLED", "disabled"),
    Column("CREATED", "created_at", when),
]
Who = Annotated[str, typer.Argument(help="The account's username or id.", show_default=False)]


def _account(api: Api, who: str) -> dict[str, Any]:
    matches = [a for a in api.items("/accounts", {"username": who}) if a["username"] == who]
    if matches:
        return matches[0]
    try:
        found: dict[str, Any] = api.get(f"/accounts/{segment(who)}")
        return found
    except ClientError as exc:
        if exc.status != 404:
            raise
    raise ClientError(f"no account with the username or id {who!r}", exit_code=NOT_FOUND_OR_AUTH)


@command(accounts_app, "list", example="flowrunner accounts list --username ali")
def list_(
    session: Session,
    username: Annotated[str | None, typer.Option(help="Username contains.")] = None,
) -> None:
    """List accounts (admins only)."""
    items = list(session.api.items("/accounts", {"username": username}))
    emit_list(items, COLUMNS, session.output)


@command(accounts_app, "create", example="flowrunner accounts create alice")
def create(
    session: Session,
    username: Annotated[str, typer.Argument(help="Login name (3-64 characters).")],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from stdin (scripts).")
    ] = False,
) -> None:
    """Create a regular account (admins only); the password is prompted for twice, hidden."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    created = session.api.post("/accounts", json={"username": username, "password": password})
    if session.output is not Output.table:
        print_data(created, session.output)
        return
    stderr_console().print(f"created account [bold]{escape(username)}[/] ({created['id']})")


def _set_disabled(session: Session, who: str, disabled: bool) -> None:
    api = session.api
    account = _account(api, who)
    updated = api.json("PATCH", f"/accounts/{segment(account['id'])}", json={"disabled": disabled})
    if session.output is not Output.table:
        print_data(updated, session.output)
        return
    emit_record(updated, session.output, fields=COLUMNS)


@command(accounts_app, "disable", example="flowrunner accounts disable alice")
def disable(session: Session, who: Who) -> None:
    """Disable an account: its logins and tokens stop working (admins only)."""
    _set_disabled(session, who, True)


@command(accounts_app, "enable", example="flowrunner accounts enable alice")
def enable(session: Session, who: Who) -> None:
    """Enable a disabled account again (admins only)."""
    _set_disabled(session, who, False)
