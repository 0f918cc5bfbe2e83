"""``flowrunner plugins``: the server's plugins.

``plugins reload``, ``enable`` and ``disable`` are for admins (the server answers 403 to
anyone else); ``plugins list`` and ``show`` are for every account. Node types are in
``node_types.py``.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.markup import escape

from flowrunner.cli.client.command import command
from flowrunner.cli.client.http import segment
from flowrunner.cli.client.output import Column, emit_list, emit_record, stderr_console, when
from flowrunner.cli.client.session import Session

plugins_app = typer.Typer(
    help="Plugins on a server: list, reload, enable, disable.", no_args_is_help=True
)

PLUGIN_COLUMNS = [
    Column("NAME", "name", no_wrap=True),
    Column("STATUS", "status"),
    Column("KIND", "kind"),
    Column("VERSION", "version"),
    Column("TYPES", "node_types", lambda v: ", ".join(v or [])),
    Column("LOADED", "loaded_at", when),
    Column("ERROR", "error"),
]
PluginName = Annotated[str, typer.Argument(help="The plugin's name (see plugins list).")]


@command(plugins_app, "list", example="flowrunner plugins list")
def list_(session: Session) -> None:
    """List the server's plugins with their status and errors."""
    items = session.api.get("/plugins")["items"]
    emit_list(items, PLUGIN_COLUMNS, session.output, empty="no plugins")


@command(plugins_app, "show", example="flowrunner plugins show acme")
def show(session: Session, name: PluginName) -> None:
    """One plugin: status, version, author, node types, last error."""
    emit_record(session.api.get(f"/plugins/{segment(name)}"), session.output)


@command(plugins_app, "reload", example="flowrunner plugins reload")
def reload(session: Session) -> None:
    """Load new and changed plugins of the server's plugins folder (admin)."""
    report: dict[str, Any] = session.api.post("/plugins/reload")
    emit_list(report["plugins"], PLUGIN_COLUMNS, session.output, empty="no plugins")
    console = stderr_console()
    for name, error in report["errors"].items():
        console.print(
            f"[yellow]warning:[/] plugin {escape(name)}: {escape(error)}", highlight=False
        )
    changed = ", ".join(report["changed"]) or "nothing"
    console.print(f"reloaded (generation {report['generation']}): {escape(changed)} changed")


@command(plugins_app, "enable", example="flowrunner plugins enable acme")
def enable(session: Session, name: PluginName) -> None:
    """Enable a plugin: its node types are usable again (admin)."""
    session.api.post(f"/plugins/{segment(name)}/enable")
    stderr_console().print(f"enabled plugin {escape(name)}")


@command(plugins_app, "disable", example="flowrunner plugins disable acme")
def disable(session: Session, name: PluginName) -> None:
    """Disable a plugin: flows using its types fail validation; runs in flight go on (admin)."""
    session.api.post(f"/plugins/{segment(name)}/disable")
    stderr_console().print(f"disabled plugin {escape(name)}")
