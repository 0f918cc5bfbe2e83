"""Alembic environment for Flowrunner's SQL schema, async-aware.

Two ways in:
- ``flowrunner.storage.sql.migrate`` (``open_store``, ``flowrunner db upgrade``) hands over an
  already-open, already-locked connection in ``config.attributes["connection"]``;
- the ``alembic`` command line (for writing new revisions) gives only a URL, and this file opens
  an async engine itself.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from flowrunner.storage.sql.database import normalize_url
from flowrunner.storage.sql.tables import metadata

config = context.config


def run_with(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        compare_type=True,
        # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_online() -> None:
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("set sqlalchemy.url (or use flowrunner.storage.upgrade)")
    engine = create_async_engine(normalize_url(url))
    async with engine.connect() as conn:
        await conn.run_sync(run_with)
    await engine.dispose()


if context.is_offline_mode():
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=metadata)
    with context.begin_transaction():
        context.run_migrations()
elif (connection := config.attributes.get("connection")) is not None:
    run_with(connection)
else:
    asyncio.run(run_online())
