"""The storage calls a poll cycle makes in bulk (issue 9): ``store_batch`` (many feeds'
items, keys, sightings, matches and fetch records in one transaction, SQLite through the
driver's executemany; one feed's through ``store_items`` here) and
``record_fetch_successes`` (many feeds' fetch records at once). Real SQLite files."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.exc import IntegrityError

from bot.core.cycle import FeedRows, FetchSuccess, ItemRow
from bot.core.models import FeedSource, Field, Item, Match
from bot.core.ports import MatchedItem
from bot.core.text import plain
from bot.feeds.dedupe import dedupe_keys
from bot.storage.ingest import KnownKey, KnownKeys, Part, Pending, plan_batch
from bot.storage.sql import SqlStorage

T0 = datetime(2024, 3, 1, 6, 0, tzinfo=UTC)


@pytest.fixture
async def storage(tmp_path: Path) -> AsyncIterator[SqlStorage]:
    s = SqlStorage(f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}")
    await s.open()
    await s.sync_config_feeds(
        [
            FeedSource("https://a.example/rss", "A"),
            FeedSource("https://b.example/rss", "https://b.example/rss"),
        ]
    )
    yield s
    await s.close()


def item(n: int, feed: str = "https://a.example/rss", **kw: object) -> Item:
    base = {
        "guid": f"g{n}",
        "title": f"Wang Yi &amp; story {n}",
        "summary": f"<p>Body {n}</p>",
        "link": f"https://news.example/{n}",
        "canonical_link": f"https://news.example/{n}",
        "published": T0 - timedelta(hours=n),
        "feed_url": feed,
        "source": "A",
        "lang": "en",
    }
    base.update(kw)
    return Item(**base)  # type: ignore[arg-type]


def row(it: Item, *found: Match) -> ItemRow:
    return ItemRow(it, dedupe_keys(it), plain(it.title), plain(it.summary), tuple(found))


async def store_items(
    storage: SqlStorage, feed_id: int, rows: list[ItemRow], *, fetched_at: datetime
) -> list[MatchedItem]:
    """One feed's ``store_batch``."""
    [new] = await storage.store_batch([FeedRows(feed_id, rows)], fetched_at=fetched_at)
    return new


async def feed_ids(storage: SqlStorage) -> dict[str, int]:
    return {f.url: f.id for f in await storage.feed_states()}


async def test_store_items_stores_new_items_with_their_matches_and_credits_copies(
    storage: SqlStorage, tmp_path: Path
) -> None:
    ids = await feed_ids(storage)
    a, b = ids["https://a.example/rss"], ids["https://b.example/rss"]
    wang = Match("wang-yi", "Wang Yi", Field.TITLE)
    first = await store_items(storage, a, [row(item(1), wang), row(item(2))], fetched_at=T0)
    assert [(m.stored.item.guid, m.matches) for m in first] == [("g1", (wang,)), ("g2", ())]
    assert [m.stored.id for m in first] == sorted(m.stored.id for m in first)
    # the same story from feed b: a sighting, not a new item; its new one is stored
    copy = item(1, "https://b.example/rss", guid="b1", source="B")
    second = await store_items(storage, b, [row(copy, wang), row(item(3))], fetched_at=T0)
    assert [m.stored.item.guid for m in second] == ["g3"]
    seen = await storage.sightings([first[0].stored.id])
    assert [(s.feed_id, s.source) for s in seen[first[0].stored.id]] == [(b, "B")]
    # a re-poll stores nothing twice
    assert await store_items(storage, a, [row(item(1), wang)], fetched_at=T0) == []

    db = sqlite3.connect(tmp_path / "bot.db")
    try:
        stored = db.execute(
            "SELECT guid, title_plain, summary_plain, published_at, fetched_at FROM items "
            "ORDER BY id"
        ).fetchall()
        found = db.execute("SELECT item_id, scope, entry_id, alias, field FROM matches").fetchall()
        fts = db.execute("SELECT rowid FROM items_fts WHERE items_fts MATCH 'story'").fetchall()
    finally:
        db.close()
    assert [r[0] for r in stored] == ["g1", "g2", "g3"]
    assert stored[0][1:3] == ("Wang Yi & story 1", "Body 1")
    # the timestamps as SQLAlchemy writes them, so that reads and comparisons agree
    assert stored[0][3:] == ("2024-03-01 05:00:00.000000", "2024-03-01 06:00:00.000000")
    assert found == [(first[0].stored.id, 0, "wang-yi", "Wang Yi", "title")]
    assert len(fts) == 3  # the full-text index trigger ran
    # and reads see the raw rows as the ORM path's
    between = await storage.items_between(T0 - timedelta(hours=2), T0 + timedelta(hours=1))
    assert {s.item.guid for s in between} >= {"g1", "g2", "g3"}
    assert all(s.fetched_at == T0 for s in between)


async def test_a_bad_row_refuses_the_whole_batch(
    storage: SqlStorage,
) -> None:
    ids = await feed_ids(storage)
    a = ids["https://a.example/rss"]
    bad = Match("x", "X", Field.TITLE)
    naive = item(2, published=datetime(2024, 1, 1))  # noqa: DTZ001 (a bug in the caller: refused)
    with pytest.raises(ValueError, match="naive"):
        await store_items(storage, a, [row(item(1), bad), row(naive)], fetched_at=T0)
    assert await storage.count_items_since(T0 - timedelta(days=1)) == 0


async def test_record_fetch_successes_records_many_feeds_in_one_call(
    storage: SqlStorage,
) -> None:
    ids = await feed_ids(storage)
    a, b = ids["https://a.example/rss"], ids["https://b.example/rss"]
    await storage.record_fetch_failure(a, at=T0, next_poll_at=T0, error="boom")
    later = T0 + timedelta(minutes=15)
    await storage.record_fetch_successes(
        [
            FetchSuccess(a, T0, later, '"v1"', None, "h1", title="Feed A's own title"),
            FetchSuccess(b, T0, later, None, "Fri, 01 Mar 2024", "h2", title="B Daily"),
            FetchSuccess(9999, T0, later, None, None, None),  # deleted meanwhile: skipped
        ]
    )
    states = {f.id: f for f in await storage.feed_states()}
    assert (states[a].etag, states[a].content_hash, states[a].next_poll_at) == ('"v1"', "h1", later)
    assert (states[b].last_modified, states[b].content_hash) == ("Fri, 01 Mar 2024", "h2")
    health = {h.id: h for h in await storage.all_feeds()}
    assert health[a].consecutive_failures == 0
    assert health[a].last_success_at == T0
    # the title replaces the name only while the name is the bare URL
    assert (states[a].name, states[b].name) == ("A", "B Daily")
    assert await storage.due_feeds(T0 + timedelta(minutes=1)) == []


# -- store_batch: many feeds, their matches and fetch records in one transaction -----------


async def test_store_batch_spans_feeds_in_order_with_their_fetch_records(
    storage: SqlStorage,
) -> None:
    ids = await feed_ids(storage)
    a, b = ids["https://a.example/rss"], ids["https://b.example/rss"]
    wang = Match("wang-yi", "Wang Yi", Field.TITLE)
    # feed b carries feed a's story 1 (same link) in the same batch, and twice itself
    copy = item(1, "https://b.example/rss", guid="b1", source="B", link="https://b.example/s1")
    again = item(1, "https://b.example/rss", guid="b1", source="B")
    later = T0 + timedelta(minutes=15)
    out = await storage.store_batch(
        [
            FeedRows(a, [row(item(1), wang), row(item(2))]),
            FeedRows(b, [row(copy, wang), row(item(3, "https://b.example/rss")), row(again)]),
        ],
        fetched_at=T0,
        records=[
            FetchSuccess(a, T0, later, '"a1"', None, "ha"),
            FetchSuccess(b, T0, later, None, None, "hb", title="B Daily"),
        ],
    )
    assert [[m.stored.item.guid for m in part] for part in out] == [["g1", "g2"], ["g3"]]
    assert [m.stored.feed_id for m in out[1]] == [b]
    story = out[0][0].stored.id
    assert out[0][0].matches == (wang,)
    # the copy of a story new in this very batch credits feed b, once, with its own link
    seen = await storage.sightings([story])
    assert [(s.feed_id, s.source, s.link) for s in seen[story]] == [
        (b, "B", "https://b.example/s1")
    ]
    states = {f.id: f for f in await storage.feed_states()}
    assert (states[a].etag, states[a].content_hash, states[a].next_poll_at) == ('"a1"', "ha", later)
    assert (states[b].content_hash, states[b].name) == ("hb", "B Daily")
    # the next cycle: everything known, nothing credited twice
    rerun = await storage.store_batch(
        [FeedRows(b, [row(copy)]), FeedRows(a, [row(item(1)), row(item(2))])], fetched_at=later
    )
    assert rerun == [[], []]
    assert len((await storage.sightings([story]))[story]) == 1


async def test_a_failing_batch_stores_nothing_of_any_feed(storage: SqlStorage) -> None:
    ids = await feed_ids(storage)
    a = ids["https://a.example/rss"]
    later = T0 + timedelta(minutes=15)
    with pytest.raises(IntegrityError):
        await storage.store_batch(
            [FeedRows(a, [row(item(1))]), FeedRows(424242, [row(item(2))])],  # no such feed
            fetched_at=T0,
            records=[FetchSuccess(a, T0, later, '"a1"', None, "ha")],
        )
    # one transaction: feed a's items and fetch record went with it
    assert await storage.count_items_since(T0 - timedelta(days=1)) == 0
    state = {f.id: f for f in await storage.feed_states()}[a]
    assert (state.etag, state.content_hash) == (None, None)


async def test_store_batch_of_records_only(storage: SqlStorage) -> None:
    ids = await feed_ids(storage)
    a = ids["https://a.example/rss"]
    later = T0 + timedelta(minutes=15)
    out = await storage.store_batch(
        [], fetched_at=T0, records=[FetchSuccess(a, T0, later, None, "x", "ha")]
    )
    assert out == []
    state = {f.id: f for f in await storage.feed_states()}[a]
    assert (state.last_modified, state.next_poll_at) == ("x", later)


def _pending(guid: str, *keys: str) -> Pending:
    return Pending(item(1, guid=guid), list(keys))


def test_plan_batch_decides_new_items_sightings_and_copies_in_order() -> None:
    parts = [
        Part(1, [_pending("a1", "k1"), _pending("a2", "k2"), _pending("a1-again", "k1")]),
        Part(2, [_pending("b1", "k2", "kb"), _pending("b2", "stored-of-1"), _pending("b3", "k3")]),
        Part(3, [_pending("c1", "k2"), _pending("c2", "stored-of-3"), _pending("c3", "k3")]),
    ]
    known = KnownKeys(
        {"stored-of-1": KnownKey(100, 1), "stored-of-3": KnownKey(300, 3)},
        sighted=set(),
    )
    plan = plan_batch(parts, known, T0)
    assert plan.new == [(0, 0), (0, 1), (1, 2)]  # a1, a2, b3
    # copies of new items of other feeds, once per (original, feed)
    assert plan.copies == [((1, 0), (0, 1)), ((2, 0), (0, 1)), ((2, 2), (1, 2))]
    # feed 2 saw feed 1's stored item; feed 3's copy of its own item credits no one
    assert list(plan.sightings) == [(100, 2)]
    # a sighting already stored is not queued again
    assert plan_batch(parts, KnownKeys(known.keys, sighted={(100, 2)}), T0).sightings == {}
