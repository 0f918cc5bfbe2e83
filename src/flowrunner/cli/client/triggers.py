"""``flowrunner triggers``: webhook triggers and schedules on a server — list, show, enable,
disable, delete. (Triggers are declared in a flow's ``triggers:``; see docs/triggers.md.)"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.markup import escape

from flowrunner.cli.client.command import command
from flowrunner.cli.client.flows_ref import resolve_flow
from flowrunner.cli.client.http import segment
from flowrunner.cli.client.output import Column, emit_list, emit_record, stderr_console, when
from flowrunner.cli.client.session import Session

triggers_app = typer.Typer(help="Webhook triggers and schedules on a server.", no_args_is_help=True)


def _what(trigger: Any) -> str:
    config = trigger.get("config", {}) if isinstance(trigger, dict) else {}
    return str(config.get("cron") or config.get("interval") or "")


COLUMNS = [
    Column("ID", "id", no_wrap=True),
    Column("FLOW", "flow_id", no_wrap=True),
    Column("NAME", "name"),
    Column("KIND", "kind"),
    Column("ENABLED", "enabled"),
    Column("SOURCE", "source"),
    Column("WHEN", "config", lambda c: _what({"config": c})),
    Column("UPDATED", "updated_at", when),
]


@command(triggers_app, "list", example="flowrunner triggers list --flow 'Order sync'")
def list_(
    session: Session,
    flow: Annotated[str | None, typer.Option(help="Only this flow's (name or id).")] = None,
) -> None:
    """List triggers (a webhook's URL is in `triggers show` and -o json)."""
    params = {"flow_id": resolve_flow(session.api, flow)["id"]} if flow else {}
    items = list(session.api.items("/triggers", params))
    emit_list(items, COLUMNS, session.output, empty="no triggers")


@command(triggers_app, "show", example="flowrunner triggers show trg_…")
def show(
    session: Session, trigger_id: Annotated[str, typer.Argument(help="The trigger's id.")]
) -> None:
    """One trigger, with its public URL (webhooks) or its cron/interval (schedules)."""
    emit_record(session.api.get(f"/triggers/{segment(trigger_id)}"), session.output)


def _switch(session: Session, trigger_id: str, on: bool) -> None:
    verb = "enable" if on else "disable"
    trigger = session.api.post(f"/triggers/{segment(trigger_id)}/{verb}")
    stderr_console().print(f"{verb}d {trigger['kind']} trigger {escape(trigger_id)}")


@command(triggers_app, "enable", example="flowrunner triggers enable trg_…")
def enable(
    session: Session, trigger_id: Annotated[str, typer.Argument(help="The trigger's id.")]
) -> None:
    """Switch a trigger on (a schedule does not catch up the time it was off)."""
    _switch(session, trigger_id, True)


@command(triggers_app, "disable", example="flowrunner triggers disable trg_…")
def disable(
    session: Session, trigger_id: Annotated[str, typer.Argument(help="The trigger's id.")]
) -> None:
    """Switch a trigger off: its URL answers 404, its schedule stops firing."""
    _switch(session, trigger_id, False)


@command(triggers_app, "delete", example="flowrunner triggers delete trg_…")
def delete(
    session: Session, trigger_id: Annotated[str, typer.Argument(help="The trigger's id.")]
) -> None:
    """Delete a trigger (one declared in a flow comes back when the flow is saved again)."""
    session.api.json("DELETE", f"/triggers/{segment(trigger_id)}")
    stderr_console().print(f"deleted trigger {escape(trigger_id)}")
