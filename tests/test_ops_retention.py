"""Retention (``storage.retention_days``): old items with their matches, sightings,
dedupe keys and search rows, and finished deliveries, pruned in small batches; on real
SQLite (a file) and on PostgreSQL when BRIEFBOT_TEST_POSTGRES_URL points at a server
(an admin URL; each test gets a fresh database, dropped afterwards)."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from bot.core.clock import FakeClock
from bot.core.models import FeedSource, Field, Item, Match
from bot.ops.logs import setup_logging
from bot.ops.retention import Retention
from bot.storage.sql import SqlStorage

PG_URL = os.environ.get("BRIEFBOT_TEST_POSTGRES_URL", "")
BACKENDS = ["sqlite", *(["postgres"] if PG_URL else [])]

NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)
A_URL = "https://feeds.test/a.xml"
B_URL = "https://feeds.test/b.xml"


@pytest.fixture(params=BACKENDS)
async def storage(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SqlStorage]:
    if request.param == "sqlite":
        s = SqlStorage(f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}")
        await s.open()
        try:
            yield s
        finally:
            await s.close()
        return
    import asyncpg

    admin = make_url(PG_URL)
    name = f"briefbot_test_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(
        admin.set(drivername="postgresql").render_as_string(hide_password=False)
    )
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
        s = SqlStorage(admin.set(database=name).render_as_string(hide_password=False))
        await s.open()
        try:
            yield s
        finally:
            await s.close()
    finally:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()


def _item(n: int, *, title: str, published: datetime | None = None, feed: str = A_URL) -> Item:
    return Item(
        guid=f"urn:guid:{n}",
        title=title,
        summary=f"Summary of story {n}.",
        link=f"https://news.test/{n}",
        canonical_link=f"https://news.test/{n}",
        published=published,
        feed_url=feed,
        source="Outlet",
    )


def _keys(it: Item) -> list[str]:
    return [f"guid:{it.guid}", f"link:{it.canonical_link}"]


async def _count(storage: SqlStorage, sql: str) -> int:
    async with storage.engine.connect() as conn:
        return int((await conn.execute(text(sql))).scalar_one())


async def _fill(storage: SqlStorage) -> dict[str, int]:
    """Old and recent items (with matches, a sighting, deliveries) around NOW - 90 days."""
    await storage.sync_config_feeds([FeedSource(A_URL, "A"), FeedSource(B_URL, "B")])
    ids = {f.url: f.id for f in await storage.feed_states()}
    old_at = NOW - 120 * DAY
    new_at = NOW - 10 * DAY
    old = [_item(n, title=f"Zeppelin report {n}") for n in range(5)]
    # fetched long ago, but published recently: kept
    late = _item(50, title="Zeppelin late report", published=NOW - 5 * DAY)
    recent = [_item(n, title=f"Zeppelin news {n}") for n in range(100, 103)]
    stored_old = await storage.insert_items(
        ids[A_URL], [(i, _keys(i)) for i in [*old, late]], fetched_at=old_at
    )
    stored_new = await storage.insert_items(
        ids[A_URL], [(i, _keys(i)) for i in recent], fetched_at=new_at
    )
    # the same story from feed B: a sighting of an old item
    await storage.insert_items(ids[B_URL], [(old[0], _keys(old[0]))], fetched_at=old_at)
    match = Match(entry_id="zeppelin", alias="Zeppelin", field=Field.TITLE)
    await storage.add_matches_bulk([(s.id, (match,)) for s in [*stored_old, *stored_new]])
    channel = await storage.get_channel("console", "news")
    sent_old = await storage.create_delivery(
        channel.id, "alert", "alert:old", {}, at=old_at, item_ids=[stored_old[0].id]
    )
    assert sent_old is not None
    await storage.mark_sent(sent_old.id, at=old_at, message_ids=["m1"])
    pending_old = await storage.create_delivery(channel.id, "digest", "digest:old", {}, at=old_at)
    assert pending_old is not None
    sent_new = await storage.create_delivery(
        channel.id, "alert", "alert:new", {}, at=new_at, item_ids=[stored_new[0].id]
    )
    assert sent_new is not None
    await storage.mark_sent(sent_new.id, at=new_at, message_ids=["m2"])
    return {"channel": channel.id, "old_item": stored_old[0].id}


async def test_prune_removes_old_rows_and_everything_hanging_off_them(
    storage: SqlStorage,
) -> None:
    ids = await _fill(storage)
    assert await _count(storage, "SELECT count(*) FROM items") == 9
    assert await _count(storage, "SELECT count(*) FROM item_sightings") == 1
    before_hits = await storage.search("Zeppelin", since=None, limit=50)
    assert len(before_hits) == 9

    report = await storage.prune(NOW - 90 * DAY, batch=2)

    assert report.items == 5
    assert report.deliveries == 1  # the old sent one; the old pending one stays
    titles = {r[0] for r in await _rows(storage, "SELECT title FROM items")}
    assert titles == {"Zeppelin late report", "Zeppelin news 100", "Zeppelin news 101",
                      "Zeppelin news 102"}  # fmt: skip
    assert await _count(storage, "SELECT count(*) FROM matches") == 4
    assert await _count(storage, "SELECT count(*) FROM item_sightings") == 0
    assert await _count(storage, "SELECT count(*) FROM item_keys") == 8  # 2 keys x 4 items
    assert await _count(storage, "SELECT count(*) FROM delivery_items") == 1
    keys = {r[0] for r in await _rows(storage, "SELECT key FROM deliveries")}
    assert keys == {"digest:old", "alert:new"}
    # the search index forgot them too
    hits = await storage.search("Zeppelin", since=None, limit=50)
    assert {h.stored.item.title for h in hits} == titles
    if storage.dialect == "sqlite":
        assert await _count(storage, "SELECT count(*) FROM items_fts") == 4
    # an old story seen again is stored again (its keys were forgotten with it)
    feeds = {f.url: f.id for f in await storage.feed_states()}
    again = _item(0, title="Zeppelin report 0")
    assert len(await storage.insert_items(feeds[A_URL], [(again, _keys(again))], fetched_at=NOW))
    assert ids["old_item"] not in {r[0] for r in await _rows(storage, "SELECT id FROM items")}


async def _rows(storage: SqlStorage, sql: str) -> list[tuple[object, ...]]:
    async with storage.engine.connect() as conn:
        return [tuple(r) for r in (await conn.execute(text(sql))).all()]


async def test_prune_goes_in_batches_of_the_given_size(storage: SqlStorage) -> None:
    await _fill(storage)
    report = await storage.prune(NOW - 90 * DAY, batch=2)
    # 5 old items in batches of 2 (2, 2, 1), then 1 delivery
    assert report.batches == 4
    again = await storage.prune(NOW - 90 * DAY, batch=2)
    assert (again.items, again.deliveries, again.batches) == (0, 0, 0)


async def test_pruning_never_holds_up_a_command(storage: SqlStorage) -> None:
    """Between two batches other storage calls get their turn: a command issued while a
    long prune runs is answered long before the prune ends."""
    await storage.sync_config_feeds([FeedSource(A_URL, "A")])
    (feed,) = await storage.feed_states()
    many = [_item(n, title=f"Old item {n}") for n in range(60)]
    await storage.insert_items(feed.id, [(i, _keys(i)) for i in many], fetched_at=NOW - 200 * DAY)
    finished: list[str] = []

    async def pruning() -> None:
        await storage.prune(NOW - 90 * DAY, batch=1, pause=0.01)
        finished.append("prune")

    async def command() -> None:
        await asyncio.sleep(0.05)  # the prune is under way
        await storage.get_channel("console", "news")
        finished.append("command")

    await asyncio.gather(pruning(), command())
    assert finished == ["command", "prune"]
    assert await _count(storage, "SELECT count(*) FROM items") == 0


async def test_retention_run_logs_one_event_line(storage: SqlStorage) -> None:
    await _fill(storage)
    out = io.StringIO()
    handler = setup_logging(0, "json", stream=out, force=True)
    try:
        report = await Retention(storage, FakeClock(NOW), 90, batch=100, pause=0).run_once()
    finally:
        assert handler is not None
        logging.getLogger().removeHandler(handler)
    assert (report.items, report.deliveries) == (5, 1)
    (line,) = [json.loads(x) for x in out.getvalue().splitlines()]
    assert line["event"] == "retention"
    assert (line["items"], line["deliveries"], line["days"]) == (5, 1, 90)
    assert line["msg"] == "retention: pruned 5 items and 1 deliveries older than 90 days"


async def test_retention_zero_days_never_prunes(storage: SqlStorage) -> None:
    await _fill(storage)
    await asyncio.wait_for(Retention(storage, FakeClock(NOW), 0).run_forever(first=0), 1)
    assert await _count(storage, "SELECT count(*) FROM items") == 9


async def test_daily_run_prunes_after_the_first_delay(storage: SqlStorage) -> None:
    await _fill(storage)
    task = asyncio.create_task(
        Retention(storage, FakeClock(NOW), 90, pause=0).run_forever(first=0.01, every=3600)
    )
    try:
        for _ in range(200):
            if await _count(storage, "SELECT count(*) FROM items") == 4:
                break
            await asyncio.sleep(0.02)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert await _count(storage, "SELECT count(*) FROM items") == 4
