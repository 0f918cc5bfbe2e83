"""The floor under ``flowrunner serve``'s start: the libraries Flowrunner is built on and none
of Flowrunner.

A Typer command that configures structlog and pydantic-settings, builds a FastAPI app with
one ``/healthz`` route and serves it with uvicorn (its default loop, as ``serve``); the app's
lifespan opens a SQLAlchemy async engine on aiosqlite in the data directory and checks a
Fernet-sealed canary there, as the server's keyring check does. What this process takes to
answer its first ``/healthz``, and its idle RSS, is what any server on this stack pays before
a line of its own code: ``bench/startup.py`` measures it beside ``serve`` in the same rounds.

    .venv/bin/python bench/bare_stack.py --port 8099 --data-dir /tmp/bare --key <fernet key>
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

cli = typer.Typer(add_completion=False)


@cli.command()
def serve(
    port: Annotated[int, typer.Option()],
    data_dir: Annotated[Path, typer.Option()],
    key: Annotated[str, typer.Option()],
) -> None:
    """Serve ``/healthz`` on loopback once the database and the key are checked."""
    import logging
    from collections.abc import AsyncIterator
    from contextlib import asynccontextmanager

    import structlog
    import uvicorn
    from cryptography.fernet import Fernet
    from fastapi import FastAPI
    from pydantic_settings import BaseSettings, SettingsConfigDict
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    class Settings(BaseSettings):
        model_config = SettingsConfigDict(env_prefix="BARE_")
        host: str = "127.0.0.1"

    settings = Settings()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    structlog.configure(
        processors=[
            structlog.processors.TimeStamper(fmt="iso"),
            structlog.processors.JSONRenderer(),
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
    )
    log = structlog.get_logger()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_async_engine(f"sqlite+aiosqlite:///{data_dir / 'bare.sqlite3'}")
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE IF NOT EXISTS canary (token TEXT NOT NULL)"))
            token = (await conn.execute(text("SELECT token FROM canary"))).scalar()
            if token is None:
                token = Fernet(key).encrypt(b"canary").decode()
                await conn.execute(text("INSERT INTO canary VALUES (:t)"), {"t": token})
        if Fernet(key).decrypt(token) != b"canary":
            raise SystemExit("wrong key")
        log.info("started", port=port)
        yield
        await engine.dispose()

    app = FastAPI(lifespan=lifespan)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    uvicorn.run(
        app,
        host=settings.host,
        port=port,
        log_level="warning",
        log_config=None,
        server_header=False,
    )


if __name__ == "__main__":
    cli()
