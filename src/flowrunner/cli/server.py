"""Server commands: ``flowrunner serve`` (the API under uvicorn) and ``flowrunner db upgrade``."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
import uvicorn

from flowrunner.config import load_settings
from flowrunner.logging import configure_logging


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
    db = typer.Typer(help="Database maintenance.", no_args_is_help=True)
    db.command("upgrade")(db_upgrade)
    app.add_typer(db, name="db")


ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="TOML settings file (keys under a flowrunner table)."),
]


def serve(
    host: Annotated[
        str | None, typer.Option(help="Address to listen on (default 127.0.0.1).")
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on (default 8080).")] = None,
    config: ConfigOption = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
) -> None:
    """Serve the HTTP API (SQLite in the data dir unless FLOWRUNNER_STORAGE says otherwise)."""
    from flowrunner.api import create_app

    overrides = {k: v for k, v in (("host", host), ("port", port)) if v is not None}
    settings = load_settings(config, **overrides)
    configure_logging(log_level)  # structlog: JSON lines, or a console on a terminal
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=log_level,
        log_config=None,  # keep the handlers configure_logging installed
        # Open event streams (SSE, WebSocket) would hold shutdown forever; cut them after
        # the grace period so the app can checkpoint and hand back its runs.
        timeout_graceful_shutdown=int(settings.shutdown_grace_seconds) or 1,
        # The app sets X-Request-ID itself; uvicorn's Server/Date headers add nothing.
        server_header=False,
        proxy_headers=False,
    )


def db_upgrade(config: ConfigOption = None) -> None:
    """Migrate the SQL database to the latest schema (also done on every start)."""
    from flowrunner.storage import upgrade
    from flowrunner.storage.factory import sql_url

    settings = load_settings(config)
    if settings.storage not in ("sqlite", "postgres"):
        raise typer.BadParameter(f"storage {settings.storage!r} has no schema to migrate")
    if settings.storage == "sqlite" and not settings.database_url:
        settings.data_dir.expanduser().mkdir(parents=True, exist_ok=True)
    asyncio.run(upgrade(sql_url(settings)))
    typer.echo("database is at the latest schema")
