"""Server commands: ``flowrunner serve`` (the API under uvicorn) and ``flowrunner db upgrade``."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from flowrunner.cli.prune import EXAMPLE as prune_example
from flowrunner.cli.prune import prune

if TYPE_CHECKING:
    from fastapi import FastAPI

    from flowrunner.config import Settings

# How `serve --workers N` hands its options to the worker processes, which uvicorn starts
# fresh (spawned) and which build the app from this module's factory.
_LOG_LEVEL_ENV = "FLOWRUNNER_SERVE_LOG_LEVEL"
# prometheus-client's multiprocess mode (flowrunner.metrics.registry).
_METRICS_ENV = "PROMETHEUS_MULTIPROC_DIR"
_CONFIG_ENV = "FLOWRUNNER_CONFIG"


def register(app: typer.Typer) -> None:
    app.command("serve", epilog="Example: flowrunner serve --host 0.0.0.0 --port 8080")(serve)
    db = typer.Typer(help="Database maintenance.", no_args_is_help=True)
    db.command("upgrade", epilog="Example: FLOWRUNNER_STORAGE=postgres flowrunner db upgrade")(
        db_upgrade
    )
    db.command("prune", epilog=prune_example)(prune)
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
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            help="Server processes sharing the port; each runs its own executor and recovery.",
        ),
    ] = 1,
) -> None:
    """Serve the HTTP API (SQLite in the data dir unless FLOWRUNNER_STORAGE says otherwise)."""
    from flowrunner.collector import collector_paused  # --help loads the CLI only

    app: FastAPI | str
    with collector_paused():
        import uvicorn

        from flowrunner.api import create_app
        from flowrunner.config import load_settings
        from flowrunner.logging import configure_logging
        from flowrunner.secrets import Keyring

        overrides = {k: v for k, v in (("host", host), ("port", port)) if v is not None}
        settings = load_settings(config, **overrides)
        configure_logging(log_level)  # structlog: JSON lines, or a console on a terminal
        if workers == 1:
            app = create_app(settings)
    metrics_dir = None
    if workers > 1:
        # Migrate and create the key file once, here: N processes doing it at the same time
        # would race (two generated keys: secrets sealed with the one that lost).
        _upgrade(settings)
        Keyring.from_settings(settings)
        # Worker processes start from scratch: they rebuild the settings from the same
        # environment (and config file) and configure logging in the factory below.
        os.environ[_LOG_LEVEL_ENV] = log_level
        # Each worker writes its metrics to files here and a scrape sums them; a fresh
        # directory per start, so values of an earlier server are not added in.
        if not os.environ.get(_METRICS_ENV):
            metrics_dir = tempfile.mkdtemp(prefix="flowrunner-metrics-")
            os.environ[_METRICS_ENV] = metrics_dir
        if config is not None:
            os.environ[_CONFIG_ENV] = str(config)
        app = f"{__name__}:worker_app"
    uvicorn.run(
        app,
        factory=workers > 1,
        workers=workers,
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
    if metrics_dir is not None:
        shutil.rmtree(metrics_dir, ignore_errors=True)


def worker_app() -> FastAPI:
    """The app of one ``serve --workers N`` process (uvicorn calls it in each worker)."""
    from flowrunner.collector import collector_paused

    with collector_paused():
        from flowrunner.api import create_app
        from flowrunner.config import load_settings
        from flowrunner.logging import configure_logging

        configure_logging(os.environ.get(_LOG_LEVEL_ENV, "info"))
        return create_app(load_settings(None))


def db_upgrade(config: ConfigOption = None) -> None:
    """Migrate the SQL database to the latest schema (also done on every start)."""
    from flowrunner.config import load_settings

    settings = load_settings(config)
    if settings.storage not in ("sqlite", "postgres"):
        raise typer.BadParameter(f"storage {settings.storage!r} has no schema to migrate")
    _upgrade(settings)
    typer.echo("database is at the latest schema")


def _upgrade(settings: Settings) -> None:
    import asyncio

    from flowrunner.storage import upgrade
    from flowrunner.storage.factory import sql_url

    if settings.storage not in ("sqlite", "postgres"):
        return
    if settings.storage == "sqlite" and not settings.database_url:
        settings.data_dir.expanduser().mkdir(parents=True, exist_ok=True)
    asyncio.run(upgrade(sql_url(settings)))
