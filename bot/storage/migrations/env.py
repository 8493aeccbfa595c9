"""Alembic environment for Briefbot.

Two ways in:
- ``SqlStorage.open()`` passes an open (sync-facing) connection in
  ``config.attributes["connection"]``, from ``AsyncConnection.run_sync``;
- the ``alembic`` command line (see ``bot/storage/alembic.ini``) builds an async engine
  from ``BRIEFBOT_DATABASE_URL`` or the ini's ``sqlalchemy.url``.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from alembic import context
from sqlalchemy import Connection, pool
from sqlalchemy.ext.asyncio import create_async_engine

from bot.storage.tables import Base, include_object

config = context.config
target_metadata = Base.metadata


def configure_options(connection: Connection) -> dict[str, Any]:
    return {
        "connection": connection,
        "target_metadata": target_metadata,
        "include_object": include_object,
        "compare_type": True,
        # SQLite cannot ALTER most things: later migrations use batch mode there
        "render_as_batch": connection.dialect.name == "sqlite",
    }


def do_run_migrations(connection: Connection) -> None:
    context.configure(**configure_options(connection))
    with context.begin_transaction():
        context.run_migrations()


async def run_async_migrations(url: str) -> None:
    engine = create_async_engine(url, poolclass=pool.NullPool)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(do_run_migrations)
            await connection.commit()
    finally:
        await engine.dispose()


def run_migrations_offline(url: str) -> None:
    context.configure(
        url=url,
        target_metadata=target_metadata,
        include_object=include_object,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def main() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        do_run_migrations(connection)
        return
    url = os.environ.get("BRIEFBOT_DATABASE_URL") or config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("set BRIEFBOT_DATABASE_URL or sqlalchemy.url")
    if context.is_offline_mode():
        run_migrations_offline(url)
    else:
        asyncio.run(run_async_migrations(url))


main()
