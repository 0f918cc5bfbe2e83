"""Waiting for a server run from the command line: live view or quiet, Ctrl-C, the ending.

Ctrl-C while following asks whether to cancel the run (a second Ctrl-C, or no, leaves it
running on the server); the command then exits 130 as any interrupted command.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.markup import escape

from flowrunner.cli.client.output import stderr_console
from flowrunner.cli.client.run_view import RemoteRunView
from flowrunner.cli.client.session import Session

if TYPE_CHECKING:
    from flowrunner.cli.client.follow import Followed

INTERRUPTED = 130


def watch(
    session: Session,
    execution_id: str,
    *,
    live: bool,
    on_event: Callable[[dict[str, Any]], None] | None = None,
) -> Followed:
    """Follow the run to its end (drawing it when ``live``); handles Ctrl-C."""
    import asyncio

    from flowrunner.cli.client.follow import follow

    err = stderr_console()
    api = session.api  # checks the token before the socket opens

    def reconnecting(attempt: int, why: str) -> None:
        err.print(f"[dim]{escape(why)}; reconnecting (attempt {attempt})…[/]")

    view = RemoteRunView(err) if live else None
    handlers = [h for h in (view, on_event) if h is not None]

    def handle(message: dict[str, Any]) -> None:
        for handler in handlers:
            handler(message)

    try:
        with view if view is not None else contextlib.nullcontext():
            return asyncio.run(
                follow(api.url, api.token or "", execution_id, handle, on_reconnect=reconnecting)
            )
    except KeyboardInterrupt:
        _ask_to_cancel(session, execution_id, err)
        raise typer.Exit(INTERRUPTED) from None


def _ask_to_cancel(session: Session, execution_id: str, err: Console) -> None:
    try:
        cancel = typer.confirm(f"\nCancel the run {execution_id} on the server?", default=False)
    except (typer.Abort, KeyboardInterrupt, EOFError):
        cancel = False
    if cancel:
        canceled = session.api.post(f"/executions/{execution_id}/cancel")
        err.print(f"run {escape(execution_id)} [yellow]{escape(str(canceled['status']))}[/]")
    else:
        err.print(
            f"the run goes on; follow it again with "
            f"[bold]flowrunner executions logs -f {escape(execution_id)}[/]"
        )
