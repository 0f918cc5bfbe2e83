"""The Typer application and the one place that maps errors to exit codes.

Every command module is imported here to register its commands, so a module's top level
imports only what defining its commands needs (typer, rich, the CLI's own helpers): the
server, flow, storage and HTTP-client stacks are imported inside the commands that use them.
`flowrunner --help` then starts in a fraction of the time (tests/cli/test_startup.py keeps
it so).
"""

from __future__ import annotations

import sys

import typer
from rich.console import Console
from rich.markup import escape

from flowrunner import __version__
from flowrunner.cli import accounts, audit, client, local, secrets, server, worker
from flowrunner.errors import FlowrunnerError

app = typer.Typer(
    name="flowrunner",
    help="Run YAML-defined workflows locally or on a Flowrunner server.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
)
local.register(app)
server.register(app)
worker.register(app)
client_secrets, client_audit = client.register(app)
# Commands on the server's store itself, run where the server's settings are (no server
# process needed): the first admin, key rotation, audit verification.
admin_app = typer.Typer(
    help="Work on the local store directly (where the server's settings are; no server needed).",
    no_args_is_help=True,
)
accounts.register(admin_app)
secrets.register(admin_app)
audit.register(admin_app)
app.add_typer(admin_app, name="admin")
# The old spellings keep working (hidden beside the client commands of the same noun).
secrets.register_rotate_key(client_secrets, hidden=True)
audit.register_verify(client_audit, hidden=True)


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
    """Console-script entry point: a FlowrunnerError becomes a message and its exit code.

    A usage error (unknown command or option, missing argument, bad value) is one line on
    stderr and exit 2, as click's own ``main`` would do; Typer bundles its own click, whose
    exceptions only share ``typer.TyperException`` with ours.
    """
    try:
        # standalone_mode=False hands exit codes back instead of calling sys.exit itself.
        # The program is `flowrunner` however it was started: under `python -m flowrunner`
        # click would name it "python -m flowrunner", and --install-completion would write a
        # script for that name that no shell can use.
        code = app(standalone_mode=False, prog_name="flowrunner")
    except FlowrunnerError as exc:
        # One line whatever the terminal's width; the server's message is text, not markup.
        Console(stderr=True, soft_wrap=True).print(
            f"[bold red]error:[/] {escape(' '.join(str(exc).split()))}", highlight=False
        )
        sys.exit(exc.exit_code)
    except typer.TyperException as exc:
        sys.exit(_show_usage_error(exc))
    except typer.Abort:
        Console(stderr=True).print("aborted")
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)


def _show_usage_error(exc: typer.TyperException) -> int:
    """Print a click error in one line (with where to get help); its exit code."""
    ctx = getattr(exc, "ctx", None)
    if type(exc).__name__ == "NoArgsIsHelpError":
        # A group called with no arguments: Typer printed its help while raising this.
        return 2
    message = " ".join(exc.format_message().split())  # click may wrap long messages
    hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
    Console(stderr=True, soft_wrap=True).print(
        f"[bold red]error:[/] {escape(message)}{escape(hint)}", highlight=False
    )
    return int(getattr(exc, "exit_code", 2))
