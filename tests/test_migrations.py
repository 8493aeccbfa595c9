"""The Alembic migrations: they build exactly the schema the models describe, upgrades
keep data, and the developer command line works."""

from __future__ import annotations

import os
import sqlite3
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect
from sqlalchemy.engine import make_url

from bot.core.models import FeedSource, Field, Item, Match
from bot.errors import StorageError
from bot.storage.sql import MIGRATIONS_DIR, SqlStorage
from bot.storage.tables import Base, include_object

T0 = datetime(2024, 3, 1, 12, tzinfo=UTC)
INI = Path(MIGRATIONS_DIR).parent / "alembic.ini"
PG_URL = os.environ.get("BRIEFBOT_TEST_POSTGRES_URL", "")
BACKENDS = ["memory", "file", *(["postgres"] if PG_URL else [])]


def head_revision() -> str:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    head = ScriptDirectory.from_config(cfg).get_current_head()
    assert head is not None
    return head


def schema_diff(connection: Connection) -> list[object]:
    context = MigrationContext.configure(
        connection, opts={"include_object": include_object, "compare_type": True}
    )
    return list(compare_metadata(context, Base.metadata))


def current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


async def check_schema(storage: SqlStorage) -> None:
    async with storage.engine.connect() as conn:
        assert await conn.run_sync(schema_diff) == []
        assert await conn.run_sync(current_revision) == head_revision()
        tables = set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
    assert set(Base.metadata.tables) <= tables


@pytest.mark.parametrize("backend", BACKENDS)
async def test_migrated_schema_matches_the_models(backend: str, tmp_path: Path) -> None:
    async with migrated(backend, tmp_path) as storage:
        await check_schema(storage)


@asynccontextmanager
async def migrated(backend: str, tmp_path: Path) -> AsyncIterator[SqlStorage]:
    if backend == "postgres":
        async with postgres_database() as url:
            storage = SqlStorage(url)
            await storage.open()
            try:
                yield storage
            finally:
                await storage.close()
        return
    url = "sqlite+aiosqlite:///:memory:"
    if backend == "file":
        url = f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}"
    storage = SqlStorage(url)
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
    conn = await asyncpg.connect(
        admin.set(drivername="postgresql").render_as_string(hide_password=False)
    )
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
        yield admin.set(database=name).render_as_string(hide_password=False)
    finally:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()


async def fill(storage: SqlStorage) -> int:
    await storage.sync_config_feeds([FeedSource("https://feeds.test/a.xml", "A")])
    feed_id = (await storage.feed_states())[0].id
    it = Item(
        "g1",
        "Xi meets Biden",
        "Summit",
        "https://n.test/1",
        "https://n.test/1",
        T0,
        "https://feeds.test/a.xml",
        "A",
    )
    [stored] = await storage.insert_items(feed_id, [(it, ["g1"])], fetched_at=T0)
    await storage.add_matches(stored.id, [Match("xi", "Xi", Field.TITLE)])
    ch = await storage.get_channel("discord", "1")
    await storage.create_delivery(ch.id, "digest", "d1", {"x": 1}, at=T0)
    return stored.id


async def test_reopening_a_file_database_keeps_its_data(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "bot.db"
    url = f"sqlite+aiosqlite:///{path}"
    first = SqlStorage(url)
    await first.open()
    item_id = await fill(first)
    await first.close()
    assert path.exists()
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"

    second = SqlStorage(url)
    await second.open()  # runs upgrade again: a no-op at head
    try:
        ch = await second.get_channel("discord", "1")
        [view] = await second.matched_items(ch.id, T0, datetime(2100, 1, 1, tzinfo=UTC))
        assert view.stored.id == item_id
        assert [h.stored.id for h in await second.search("biden", since=None)] == [item_id]
        assert await second.get_delivery(ch.id, "d1") is not None
        await check_schema(second)
    finally:
        await second.close()


async def test_upgrade_from_each_revision_keeps_rows(tmp_path: Path) -> None:
    """Rows written at the first revision survive the upgrade to head (a no-op while
    there is a single revision; the check grows with the history)."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'old.db'}"
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    script = ScriptDirectory.from_config(cfg)
    first_rev = list(script.walk_revisions())[-1].revision
    storage = SqlStorage(url)

    def upgrade_to_first(connection: Connection) -> None:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, first_rev)

    async with storage.engine.begin() as conn:
        await conn.run_sync(upgrade_to_first)
    item_id = await fill(storage)
    await storage.open()
    try:
        assert [s.id for s in await storage.items_between(T0, T0.replace(year=2100))] == [item_id]
        await check_schema(storage)
    finally:
        await storage.close()


async def test_downgrade_to_base_and_back(tmp_path: Path) -> None:
    storage = SqlStorage(f"sqlite+aiosqlite:///{tmp_path / 'down.db'}")
    await storage.open()
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))

    def downgrade(connection: Connection) -> None:
        cfg.attributes["connection"] = connection
        command.downgrade(cfg, "base")

    try:
        async with storage.engine.begin() as conn:
            await conn.run_sync(downgrade)
            names = await conn.run_sync(lambda c: inspect(c).get_table_names())
        assert set(names) <= {"alembic_version"}
        await storage.open()
        await check_schema(storage)
        assert await fill(storage) > 0
    finally:
        await storage.close()


async def test_database_from_a_newer_version_is_refused_clearly(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    storage = SqlStorage(f"sqlite+aiosqlite:///{path}")
    await storage.open()
    await storage.close()
    with sqlite3.connect(path) as raw:
        raw.execute("UPDATE alembic_version SET version_num = 'fffffffff999'")
    storage = SqlStorage(f"sqlite+aiosqlite:///{path}")
    with pytest.raises(StorageError, match="newer Briefbot"):
        await storage.open()
    await storage.close()


def test_alembic_command_line_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``alembic -c bot/storage/alembic.ini upgrade head`` as a developer runs it."""
    db = tmp_path / "cli.db"
    monkeypatch.setenv("BRIEFBOT_DATABASE_URL", f"sqlite+aiosqlite:///{db}")
    command.upgrade(Config(str(INI)), "head")
    with sqlite3.connect(db) as raw:
        assert (
            raw.execute("SELECT version_num FROM alembic_version").fetchone()[0] == head_revision()
        )
        tables = {r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"items", "items_fts", "feeds", "deliveries"} <= tables


def test_migrations_are_shipped_as_package_data() -> None:
    assert INI.is_file()
    assert (MIGRATIONS_DIR / "env.py").is_file()
    assert list((MIGRATIONS_DIR / "versions").glob("*.py"))


async def test_upgrade_from_0001_keeps_items_and_credits_later_duplicates(
    tmp_path: Path,
) -> None:
    """A database written by the 0001 schema (rows inserted with plain SQL, as that
    version stored them) upgrades to head with its rows; a duplicate arriving after the
    upgrade becomes a sighting of the old item; downgrading to 0001 drops only the
    sightings."""
    path = tmp_path / "v1.db"
    url = f"sqlite+aiosqlite:///{path}"
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))

    def migrate(connection: Connection, revision: str, *, down: bool = False) -> None:
        cfg.attributes["connection"] = connection
        (command.downgrade if down else command.upgrade)(cfg, revision)

    storage = SqlStorage(url)
    async with storage.engine.begin() as conn:
        await conn.run_sync(migrate, "0001")
    await storage.close()
    at = "2024-03-01 12:00:00.000000"
    with sqlite3.connect(path) as raw:
        raw.execute(
            "INSERT INTO feeds (id, url, name, origin, active, consecutive_failures, created_at)"
            " VALUES (1, 'https://feeds.test/a.xml', 'A', 'config', 1, 0, ?),"
            " (2, 'https://feeds.test/b.xml', 'B', 'config', 1, 0, ?)",
            (at, at),
        )
        raw.execute(
            "INSERT INTO items (id, feed_id, guid, link, canonical_link, title, summary,"
            " title_plain, summary_plain, published_at, fetched_at, source)"
            " VALUES (7, 1, 'g1', 'https://n.test/1', 'https://n.test/1', 'Xi meets Biden',"
            " 'Summit', 'Xi meets Biden', 'Summit', ?, ?, 'A')",
            (at, at),
        )
        raw.execute("INSERT INTO item_keys (key, item_id) VALUES ('link:n.test/1', 7)")
        raw.execute(
            "INSERT INTO matches (item_id, scope, entry_id, alias, field)"
            " VALUES (7, 0, 'xi', 'Xi', 'title')"
        )

    storage = SqlStorage(url)
    await storage.open()
    try:
        await check_schema(storage)
        ch = await storage.get_channel("discord", "1")
        [view] = await storage.matched_items(ch.id, T0, T0.replace(year=2100))
        assert (view.stored.id, view.stored.item.title, view.sightings) == (7, "Xi meets Biden", ())
        assert view.stored.fetched_at == T0
        copy = Item("b1", "Xi meets Biden", "", "https://n.test/1?x", None, None, "b", "B")
        assert await storage.insert_items(2, [(copy, ["link:n.test/1"])], fetched_at=T0) == []
        [view] = await storage.matched_items(ch.id, T0, T0.replace(year=2100))
        assert [(s.feed_id, s.source) for s in view.sightings] == [(2, "B")]
        async with storage.engine.begin() as conn:
            await conn.run_sync(migrate, "0001", down=True)
            tables = set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
        assert "item_sightings" not in tables
        assert [s.id for s in await storage.items_between(T0, T0.replace(year=2100))] == [7]
    finally:
        await storage.close()
