"""The command line as a client of a Flowrunner server (over HTTP and the WebSocket).

``register`` adds the client commands to the root app: ``login``/``logout``/``whoami``,
``profile``, ``flows`` (with ``flows run``), ``executions``, ``secrets``, ``tokens``,
``triggers``, ``webhooks``, ``accounts``, ``plugins``, ``node-types`` and ``audit list``.
Local commands on the same nouns (``secrets rotate-key``, ``audit verify``) are added to these
groups by ``cli/app.py``.
"""

from __future__ import annotations

import typer

from flowrunner.cli.client import audit, auth, flows_run
from flowrunner.cli.client.accounts import accounts_app
from flowrunner.cli.client.executions import executions_app
from flowrunner.cli.client.flows import flows_app
from flowrunner.cli.client.node_types import node_types_app
from flowrunner.cli.client.plugins import plugins_app
from flowrunner.cli.client.secrets import secrets_app
from flowrunner.cli.client.tokens import tokens_app
from flowrunner.cli.client.triggers import triggers_app
from flowrunner.cli.client.webhooks import webhooks_app

__all__ = ["flows_run", "register"]


def register(app: typer.Typer) -> tuple[typer.Typer, typer.Typer]:
    """Add the client commands; the ``secrets`` and ``audit`` groups, for local additions."""
    auth.register(app)
    app.add_typer(flows_app, name="flows")
    app.add_typer(executions_app, name="executions")
    app.add_typer(secrets_app, name="secrets")
    app.add_typer(tokens_app, name="tokens")
    app.add_typer(triggers_app, name="triggers")
    app.add_typer(webhooks_app, name="webhooks")
    app.add_typer(accounts_app, name="accounts")
    app.add_typer(plugins_app, name="plugins")
    app.add_typer(node_types_app, name="node-types")
    audit_app = typer.Typer(
        help="The audit log: on a server (list), or the local store's (verify).",
        no_args_is_help=True,
    )
    audit.register(audit_app)
    app.add_typer(audit_app, name="audit")
    return secrets_app, audit_app
