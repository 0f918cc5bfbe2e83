"""``flowrunner admin accounts create``: make an account (the first admin) directly in the store.

``flowrunner accounts`` is the server's (through the API, by an admin); this one needs no
server and no token, only the server's settings: it is how the first admin is made.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from flowrunner.config import Settings
    from flowrunner.storage import Account

accounts_app = typer.Typer(
    help="Manage accounts directly in the store (no server needed).", no_args_is_help=True
)


@accounts_app.command("create", epilog="Example: flowrunner admin accounts create root --admin")
def create(
    username: Annotated[str, typer.Argument(help="Login name (3-64 characters).")],
    admin: Annotated[bool, typer.Option("--admin", help="Make it an administrator.")] = False,
    password_stdin: Annotated[
        bool,
        typer.Option("--password-stdin", help="Read the password from stdin (for scripts)."),
    ] = False,
) -> None:
    """Create an account; the password is prompted for (twice) unless --password-stdin."""
    import asyncio

    from flowrunner.config import load_settings

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    account = asyncio.run(_create(load_settings(), username, password, admin))
    kind = "admin account" if account.is_admin else "account"
    typer.echo(f"created {kind} {account.username} ({account.id})")


async def _create(settings: Settings, username: str, password: str, admin: bool) -> Account:
    from flowrunner.accounts import AccountService, LoginLimiter
    from flowrunner.audit import AuditLog
    from flowrunner.storage import open_store

    store = await open_store(settings)
    try:
        # The limiter is irrelevant here (no login happens); the service needs one.
        service = AccountService(store, AuditLog(store), LoginLimiter())
        return await service.create_account(username, password, is_admin=admin)
    finally:
        await store.close()


def register(app: typer.Typer) -> None:
    app.add_typer(accounts_app, name="accounts")
