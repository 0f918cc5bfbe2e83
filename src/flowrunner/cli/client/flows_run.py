"""``flowrunner flows run``: run a stored flow on the server (``run FILE`` stays local)."""

from __future__ import annotations

from typing import Annotated

import typer

from flowrunner.cli.client.command import command
from flowrunner.cli.client.errors import UsageProblem
from flowrunner.cli.client.flows import flows_app
from flowrunner.cli.client.flows_ref import resolve_flow
from flowrunner.cli.client.http import segment
from flowrunner.cli.client.runs import finish
from flowrunner.cli.client.session import Session
from flowrunner.cli.local import parse_input


@command(
    flows_app,
    "run",
    example="flowrunner flows run 'Order sync' --input '{\"since\": \"2026-01-01\"}' --follow",
)
def run(
    session: Session,
    flow: Annotated[str, typer.Argument(help="The flow's id or name.", show_default=False)],
    input_: Annotated[
        str | None, typer.Option("--input", "-i", help="Run input: JSON text, or @file.json.")
    ] = None,
    version: Annotated[
        int | None, typer.Option(min=1, help="Run this version (default: the current one).")
    ] = None,
    wait: Annotated[bool, typer.Option("--wait", help="Wait for the run to end.")] = False,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Show the nodes and logs live, then the output.")
    ] = False,
    idempotency_key: Annotated[
        str | None,
        typer.Option(help="The same key again returns the run it started instead of a new one."),
    ] = None,
) -> None:
    """Start a run of a stored flow; with --follow watch it live, with --wait wait for it.

    Exit code: 0 started (or completed, with --wait/--follow), 1 failed or canceled.
    Ctrl-C while following asks whether to cancel the run.
    """
    if wait and follow:
        raise UsageProblem("--wait and --follow exclude each other (--follow waits too)")
    run_input = parse_input(input_)  # bad JSON is a usage error before anything is sent
    body: dict[str, object] = {"input": run_input}
    if version is not None:
        body["version"] = version
    api = session.api
    found = resolve_flow(api, flow)
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
    accepted = api.post(f"/flows/{segment(found['id'])}/run", json=body, headers=headers)
    finish(session, accepted, wait=wait, live=follow)
