"""The Typer application and the one place that maps errors to exit codes."""

from __future__ import annotations

import sys

import click
import typer
from rich.console import Console

from flowrunner import __version__
from flowrunner.cli import accounts, audit, local, secrets, server
from flowrunner.errors import FlowrunnerError

app = typer.Typer(
    name="flowrunner",
    help="Run YAML-defined workflows locally or on a Flowrunner server.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
local.register(app)
accounts.register(app)
secrets.register(app)
audit.register(app)
server.register(app)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"flowrunner {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version."
    ),
) -> None:
    """Run YAML-defined workflows locally or on a Flowrunner server."""


def main() -> None:
    """Console-script entry point: a FlowrunnerError becomes a message and its exit code."""
    try:
        # standalone_mode=False hands exit codes back instead of calling sys.exit itself.
        code = app(standalone_mode=False)
    except FlowrunnerError as exc:
        Console(stderr=True).print(f"[bold red]error:[/] {exc}", highlight=False)
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.Abort:
        Console(stderr=True).print("aborted")
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)
