"""``flowrunner audit list``: security events from a server's audit log."""

from __future__ import annotations

from typing import Annotated

import typer

from flowrunner.cli.client.command import command
from flowrunner.cli.client.output import Column, emit_list, when
from flowrunner.cli.client.session import Session

COLUMNS = [
    Column("SEQ", "seq"),
    Column("TIME", "created_at", when),
    Column("ACTION", "action"),
    Column("ACTOR", "actor"),
    Column("TARGET", "target"),
]


def register(audit_app: typer.Typer) -> None:
    @command(audit_app, "list", example="flowrunner audit list --limit 20")
    def list_(
        session: Session,
        all_: Annotated[
            bool, typer.Option("--all", help="Every account's records, in order (admins).")
        ] = False,
        limit: Annotated[int, typer.Option(min=1, help="At most this many records.")] = 50,
    ) -> None:
        """List your audit records, newest first (--all: the whole log, for admins)."""
        params = {"scope": "all" if all_ else "own"}
        items = list(session.api.items("/audit", params, limit=limit))
        emit_list(items, COLUMNS, session.output, empty="no audit records")
