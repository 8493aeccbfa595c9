"""Shared by the tests/test_storage_*.py files: SqlStorage against real databases,
SQLite in memory and in a file, and PostgreSQL when BRIEFBOT_TEST_POSTGRES_URL points at
a server (an admin URL such as ``postgresql+asyncpg://postgres@127.0.0.1:5432/postgres``;
each test gets a fresh database that is dropped afterwards)."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy.engine import make_url

from bot.core.models import FeedSource, Item
from bot.storage.sql import SqlStorage

PG_URL = os.environ.get("BRIEFBOT_TEST_POSTGRES_URL", "")
BACKENDS = ["memory", "file", *(["postgres"] if PG_URL else [])]

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)
A_URL = "https://feeds.test/a.xml"
B_URL = "https://feeds.test/b.xml"
C_URL = "https://feeds.test/c.xml"


@asynccontextmanager
async def open_storage(backend: str, tmp_path: Path) -> AsyncIterator[SqlStorage]:
    if backend == "memory":
        storage = SqlStorage("sqlite+aiosqlite:///:memory:")
    elif backend == "file":
        storage = SqlStorage(f"sqlite+aiosqlite:///{tmp_path / 'sub' / 'dir' / 'bot.db'}")
    else:
        async with postgres_database() as url:
            storage = SqlStorage(url)
            await storage.open()
            try:
                yield storage
            finally:
                await storage.close()
        return
    await storage.open()
    try:
        yield storage
    finally:
        await storage.close()


@asynccontextmanager
async def postgres_database() -> AsyncIterator[str]:
    """A throwaway database on the server at BRIEFBOT_TEST_POSTGRES_URL."""
    import asyncpg

    admin = make_url(PG_URL)
    name = f"briefbot_test_{uuid.uuid4().hex[:12]}"
    dsn = admin.set(drivername="postgresql").render_as_string(hide_password=False)
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
        yield admin.set(database=name).render_as_string(hide_password=False)
    finally:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()


def item(
    n: int,
    *,
    title: str | None = None,
    summary: str = "",
    feed_url: str = A_URL,
    published: datetime | None = None,
    source: str = "Outlet A",
    lang: str | None = None,
) -> Item:
    return Item(
        guid=f"urn:guid:{n}",
        title=title if title is not None else f"Story number {n}",
        summary=summary,
        link=f"https://news.test/{n}?utm_source=x",
        canonical_link=f"https://news.test/{n}",
        published=published,
        feed_url=feed_url,
        source=source,
        lang=lang,
    )


def keys(it: Item) -> list[str]:
    return [f"guid:{it.guid}", f"link:{it.canonical_link}"]


async def feed_ids(storage: SqlStorage) -> dict[str, int]:
    return {f.url: f.id for f in await storage.feed_states()}


async def setup_feeds(storage: SqlStorage) -> dict[str, int]:
    await storage.sync_config_feeds(
        [FeedSource(A_URL, "Outlet A", "en"), FeedSource(B_URL, "Outlet B")]
    )
    return await feed_ids(storage)
