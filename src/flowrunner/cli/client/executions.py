"""``flowrunner executions``: the runs on a server — list, inspect, logs, cancel, retry, and
send a signal to a waiting run."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

import typer
from rich.markup import escape

from flowrunner.cli.client.command import command
from flowrunner.cli.client.errors import UsageProblem
from flowrunner.cli.client.flows_ref import resolve_flow
from flowrunner.cli.client.http import segment
from flowrunner.cli.client.output import (
    Column,
    Output,
    emit_list,
    emit_record,
    ms,
    print_data,
    stderr_console,
    stdout_console,
    when,
)
from flowrunner.cli.client.runs import finish
from flowrunner.cli.client.session import Session
from flowrunner.cli.client.watching import watch

executions_app = typer.Typer(help="Runs (executions) on a server.", no_args_is_help=True)

ExecutionId = Annotated[str, typer.Argument(help="The execution's id.", show_default=False)]
STATUSES = ("queued", "running", "waiting", "completed", "failed", "canceled")
LIST_COLUMNS = [
    Column("ID", "id", no_wrap=True),
    Column("FLOW", "flow"),
    Column("VERSION", "flow_version"),
    Column("STATUS", "status"),
    Column("CREATED", "created_at", when),
    Column("DURATION", "duration_ms", ms),
]
RECORD_FIELDS = [
    LIST_COLUMNS[0],
    Column("FLOW", "flow_id"),
    *LIST_COLUMNS[2:4],
    Column("PROGRESS", "progress", lambda v: f"{float(v or 0) * 100:.0f}%"),
    Column("CURRENT NODE", "current_node"),
    Column("CREATED", "created_at", when),
    Column("STARTED", "started_at", when),
    Column("FINISHED", "finished_at", when),
    Column("DURATION", "duration_ms", ms),
    Column("PARENT", "parent_id"),
    Column("WAITING FOR", "waiting_for", lambda v: _waiting_for(v) if v else ""),
    Column("WAKES AT", "wake_at", when),
    Column("INPUT", "input"),
    Column("OUTPUT", "output"),
    Column("ERROR", "error"),
]


@command(executions_app, "list", example="flowrunner executions list --flow 'Order sync' -s failed")
def list_(
    session: Session,
    flow: Annotated[str | None, typer.Option(help="Only runs of this flow (id or name).")] = None,
    status: Annotated[
        list[str] | None,
        typer.Option("--status", "-s", help=f"Only these statuses ({', '.join(STATUSES)})."),
    ] = None,
    since: Annotated[
        str | None, typer.Option(help="Created at or after (ISO 8601, e.g. 2026-12-01T00:00Z).")
    ] = None,
    until: Annotated[str | None, typer.Option(help="Created before (ISO 8601).")] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many runs.")] = 50,
) -> None:
    """List runs, newest first."""
    after, before = _instant(since, "--since"), _instant(until, "--until")  # before sending
    api = session.api
    flow_id = resolve_flow(api, flow)["id"] if flow is not None else None
    params = {
        "flow_id": flow_id,
        "status": status or None,
        "created_after": after,
        "created_before": before,
    }
    items = list(api.items("/executions", params, limit=limit))
    if session.output is Output.table and items:
        # People read flow names; the API's JSON (for scripts) keeps flow_id only.
        names = {f["id"]: f["name"] for f in api.items("/flows", limit=1000)}
        items = [{**e, "flow": names.get(e["flow_id"], e["flow_id"])} for e in items]
    emit_list(items, LIST_COLUMNS, session.output, empty="no runs")


def _instant(value: str | None, option: str) -> str | None:
    """``value`` as given, once it reads as ISO 8601: a bad one is a usage error (exit 2)
    here, not a refused request."""
    if value is None:
        return None
    try:
        datetime.fromisoformat(value)
    except ValueError:
        raise UsageProblem(
            f"{option}: {value!r} is not an ISO 8601 date or time (e.g. 2026-12-01T00:00Z)"
        ) from None
    return value


@command(executions_app, "get", example="flowrunner executions get 0f3c… -o json")
def get(session: Session, execution_id: ExecutionId) -> None:
    """Show a run: status, progress, timings, input, output or error."""
    record = session.api.get(f"/executions/{segment(execution_id)}")
    emit_record(record, session.output, fields=RECORD_FIELDS)


@command(executions_app, "logs", example="flowrunner executions logs 0f3c… --follow")
def logs(
    session: Session,
    execution_id: ExecutionId,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new lines until the run ends.")
    ] = False,
    node: Annotated[str | None, typer.Option(help="Only this node's lines.")] = None,
    level: Annotated[str | None, typer.Option(help="Only this level (info, warning…).")] = None,
) -> None:
    """Print a run's log lines; with --follow also the ones still to come."""
    api = session.api
    params = {"node_id": node, "level": level}
    printed: list[dict[str, Any]] = []
    after = 0
    while True:  # the history first, page by page
        page = api.get(
            f"/executions/{segment(execution_id)}/logs",
            params={**params, "after_seq": after, "limit": 1000},
        )
        for event in page["items"]:
            _print_log(event, session.output, printed)
        if not page.get("next_cursor"):
            break
        after = int(page["next_cursor"])
    if not follow:
        if session.output is Output.yaml:
            print_data(printed, Output.yaml)
        return
    last = max((int(e["seq"]) for e in printed), default=0)

    def on_event(message: dict[str, Any]) -> None:
        if message.get("type") != "log" or message["seq"] <= last:
            return
        data = message.get("data") or {}
        if node is not None and data.get("node_id") != node:
            return
        if level is not None and data.get("level") != level:
            return
        _print_log(message, session.output, printed)

    watch(session, execution_id, live=False, on_event=on_event)
    if session.output is Output.yaml:
        print_data(printed, Output.yaml)


def _print_log(event: dict[str, Any], output: Output, printed: list[dict[str, Any]]) -> None:
    printed.append(event)
    if output is Output.json:
        # One JSON object per line, so a follower can be piped to jq as lines arrive.
        typer.echo(json.dumps(event, ensure_ascii=False))
        return
    if output is Output.yaml:
        return  # printed as one document at the end
    data = event.get("data") or {}
    path = "/".join([*(data.get("flow_path") or ()), str(data.get("node_id") or "")])
    stdout_console().print(
        f"[dim]{escape(when(event.get('time')))}[/] {escape(str(data.get('level') or 'info'))} "
        f"[bold]{escape(path)}[/] {escape(str(data.get('message') or ''))}",
        highlight=False,
        soft_wrap=True,
    )


@command(executions_app, "cancel", example="flowrunner executions cancel 0f3c…")
def cancel(session: Session, execution_id: ExecutionId) -> None:
    """Stop a queued or running run."""
    record = session.api.post(f"/executions/{segment(execution_id)}/cancel")
    if session.output is not Output.table:
        print_data(record, session.output)
        return
    stderr_console().print(f"run {escape(execution_id)} [yellow]{escape(record['status'])}[/]")


@command(executions_app, "retry", example="flowrunner executions retry 0f3c… --resume --follow")
def retry(
    session: Session,
    execution_id: ExecutionId,
    resume: Annotated[
        bool, typer.Option("--resume", help="Start at the node that failed, with its state.")
    ] = False,
    wait: Annotated[bool, typer.Option("--wait", help="Wait for the new run to end.")] = False,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Show the new run live.")] = False,
) -> None:
    """Run a finished run again (same version and input), or resume a failed one."""
    accepted = session.api.post(
        f"/executions/{segment(execution_id)}/retry", json={"resume": resume}
    )
    finish(session, accepted, wait=wait, live=follow)


@command(
    executions_app,
    "signal",
    example='flowrunner executions signal 0f3c… approval --data \'{"decision": "approve"}\'',
)
def signal(
    session: Session,
    execution_id: ExecutionId,
    name: Annotated[str, typer.Argument(help="The signal's name (the wait_for node's name).")],
    data: Annotated[
        str | None, typer.Option("--data", "-d", help="The payload: JSON (default: null).")
    ] = None,
    wait: Annotated[bool, typer.Option("--wait", help="Wait for the run to end.")] = False,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Show the run live.")] = False,
) -> None:
    """Send a signal to a run waiting for it (a wait_for node); the payload is its output."""
    try:
        payload = json.loads(data) if data is not None else None
    except json.JSONDecodeError as exc:
        raise typer.BadParameter(f"not JSON: {exc}", param_hint="--data") from exc
    accepted = session.api.post(
        f"/executions/{segment(execution_id)}/signals/{segment(name)}", json=payload
    )
    finish(session, accepted, wait=wait, live=follow)


def _waiting_for(value: Any) -> str:
    if not isinstance(value, dict):
        return str(value)
    what = f"signal '{value['signal']}'" if value.get("signal") else "timer"
    return f"{what} at {value.get('node_id')}"
