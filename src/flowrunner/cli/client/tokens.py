"""``flowrunner tokens``: your API tokens on a server — list, create (shown once), revoke."""

from __future__ import annotations

import re
from typing import Annotated

import typer
from rich.markup import escape

from flowrunner.cli.client.command import command
from flowrunner.cli.client.http import segment
from flowrunner.cli.client.output import (
    Column,
    Output,
    emit_list,
    print_data,
    stderr_console,
    when,
)
from flowrunner.cli.client.session import Session

# Token lifetimes are days or weeks, which flow durations (seconds to hours) do not spell.
_LIFETIME = re.compile(r"(\d+)\s*([smhdw])")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def lifetime_seconds(text: str) -> int:
    """``90d``, ``12h``, ``2w3d`` as seconds; ValueError for anything else."""
    compact = text.strip().lower()
    parts = _LIFETIME.findall(compact)
    if not parts or _LIFETIME.sub("", compact).strip():
        raise ValueError(f"invalid lifetime {text!r}: use e.g. 30d, 12h, 2w")
    return sum(int(n) * _UNIT[unit] for n, unit in parts)


tokens_app = typer.Typer(help="Your API tokens on a server.", no_args_is_help=True)

COLUMNS = [
    Column("ID", "id", no_wrap=True),
    Column("NAME", "name"),
    Column("PREFIX", "prefix"),
    Column("CREATED", "created_at", when),
    Column("LAST USED", "last_used_at", when),
    Column("EXPIRES", "expires_at", when),
    Column("REVOKED", "revoked_at", when),
]


@command(tokens_app, "list", example="flowrunner tokens list")
def list_(session: Session) -> None:
    """List your tokens (never the secret part)."""
    emit_list(list(session.api.items("/tokens")), COLUMNS, session.output, empty="no tokens")


@command(tokens_app, "create", example="flowrunner tokens create ci --expires-in 90d")
def create(
    session: Session,
    name: Annotated[str, typer.Argument(help="What the token is for.", show_default=False)],
    expires_in: Annotated[
        str | None, typer.Option(help="Lifetime, e.g. 12h or 90d (default: no expiry).")
    ] = None,
) -> None:
    """Create an API token and print it once (it cannot be shown again)."""
    body: dict[str, object] = {"name": name}
    if expires_in is not None:
        try:
            body["expires_in_seconds"] = lifetime_seconds(expires_in)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--expires-in") from exc
    created = session.api.post("/tokens", json=body)
    if session.output is not Output.table:
        print_data(created, session.output)
        return
    typer.echo(created["token"])
    stderr_console().print(
        f"created token [bold]{escape(name)}[/] ({escape(created['id'])}); "
        "this is the only time it is shown"
    )


@command(tokens_app, "revoke", example="flowrunner tokens revoke 5b1e…")
def revoke(
    session: Session,
    token_id: Annotated[str, typer.Argument(help="The token's id (see tokens list).")],
) -> None:
    """Revoke a token: it stops working at once."""
    session.api.json("DELETE", f"/tokens/{segment(token_id)}")
    stderr_console().print(f"revoked token {escape(token_id)}")
