"""Starting and finishing server runs: ``flows run`` and ``executions retry`` share this.

A run started without ``--wait``/``--follow`` prints its id and returns at once. ``--follow``
draws it live as the local ``run`` does (stderr) and prints its output as JSON (stdout);
``--wait`` only waits. Either way the exit code is the run's: 0 completed, 1 failed or
canceled.
"""

from __future__ import annotations

from typing import Any

import typer
from rich.markup import escape

from flowrunner.cli.client.http import segment
from flowrunner.cli.client.output import Output, print_data, stderr_console, to_json
from flowrunner.cli.client.session import Session
from flowrunner.cli.client.watching import watch


def finish(session: Session, accepted: dict[str, Any], *, wait: bool, live: bool) -> None:
    execution_id = str(accepted["execution_id"])
    err = stderr_console()
    if not (wait or live):
        if session.output is not Output.table:
            print_data(accepted, session.output)
            return
        typer.echo(execution_id)
        err.print(
            f"run {escape(execution_id)} {escape(str(accepted['status']))}; follow it with "
            f"[bold]flowrunner executions logs -f {escape(execution_id)}[/]"
        )
        return
    followed = watch(session, execution_id, live=live)
    execution = session.api.get(f"/executions/{segment(execution_id)}")
    status = execution["status"]
    if session.output is not Output.table:
        print_data(execution, session.output)
    elif status == "completed":
        took = execution.get("duration_ms")
        timing = f" in {took:.0f} ms" if isinstance(took, int | float) else ""
        err.print(f"[bold green]completed[/]{timing}", highlight=False)
        typer.echo(to_json(execution.get("output")))
    else:
        error = execution.get("error") or {}
        where = f" at node {error['node_id']}" if error.get("node_id") else ""
        message = error.get("message") or status
        err.print(f"[bold red]{escape(status)}[/]{escape(where)}: {escape(str(message))}")
    if status != "completed" or followed.status not in (None, "completed"):
        raise typer.Exit(1)
