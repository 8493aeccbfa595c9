"""SqlStorage against real databases: SQLite in memory and in a file, and PostgreSQL when
BRIEFBOT_TEST_POSTGRES_URL points at a server (an admin URL such as
``postgresql+asyncpg://postgres@127.0.0.1:5432/postgres``; each test gets a fresh
database that is dropped afterwards)."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from bot.core.models import FeedSource, Field, Item, Match
from bot.core.ports import Sighting
from bot.errors import ConfigError, InputError, NotFoundError, StorageError
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


@pytest.fixture(params=BACKENDS)
async def storage(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SqlStorage]:
    async with open_storage(request.param, tmp_path) as s:
        yield s


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


# -- feeds ---------------------------------------------------------------------------


async def test_sync_config_feeds_adds_renames_and_retires(storage: SqlStorage) -> None:
    ids = await setup_feeds(storage)
    assert set(ids) == {A_URL, B_URL}
    states = {f.url: f for f in await storage.feed_states()}
    assert states[A_URL].name == "Outlet A"
    assert states[A_URL].lang == "en"
    assert states[A_URL].origin == "config"
    assert states[A_URL].consecutive_failures == 0
    assert states[A_URL].next_poll_at is None

    await storage.record_fetch_success(
        ids[A_URL],
        at=T0,
        next_poll_at=T0 + timedelta(minutes=15),
        etag='"abc"',
        last_modified="Fri, 01 Mar 2024 12:00:00 GMT",
        content_hash="h1",
    )
    # rename A, drop B, add C
    await storage.sync_config_feeds(
        [FeedSource(A_URL, "Outlet A renamed"), FeedSource(C_URL, "Outlet C")]
    )
    states = {f.url: f for f in await storage.feed_states()}
    assert set(states) == {A_URL, C_URL}
    a = states[A_URL]
    assert a.id == ids[A_URL]
    assert a.name == "Outlet A renamed"
    assert a.lang is None
    assert (a.etag, a.last_modified, a.content_hash) == (
        '"abc"',
        "Fri, 01 Mar 2024 12:00:00 GMT",
        "h1",
    )
    assert a.next_poll_at == T0 + timedelta(minutes=15)
    assert a.next_poll_at is not None
    assert a.next_poll_at.tzinfo is not None

    # B comes back: same row, history kept
    await storage.sync_config_feeds([FeedSource(B_URL, "Outlet B")])
    states = {f.url: f for f in await storage.feed_states()}
    assert set(states) == {B_URL}
    assert states[B_URL].id == ids[B_URL]


async def test_retired_config_feed_lives_on_for_a_channel_that_added_it(
    storage: SqlStorage,
) -> None:
    ids = await setup_feeds(storage)
    ch = await storage.get_channel("discord", "100")
    other = await storage.get_channel("discord", "200")
    # a config feed the channel explicitly adds is already followed
    with pytest.raises(InputError, match="already follows"):
        await storage.add_feed(FeedSource(A_URL, "A"), channel_id=ch.id)
    await storage.remove_feed(ch.id, ids[A_URL])
    state = await storage.add_feed(FeedSource(A_URL, "A"), channel_id=ch.id)
    assert state.id == ids[A_URL]

    await storage.sync_config_feeds([FeedSource(B_URL, "Outlet B")])
    active = {f.url: f for f in await storage.feed_states()}
    assert active[A_URL].origin == "chat"
    assert [f.url for f in await storage.channel_feeds(ch.id)] == [A_URL, B_URL]
    assert [f.url for f in await storage.channel_feeds(other.id)] == [B_URL]

    # once its last subscriber leaves, it is no longer polled
    await storage.remove_feed(ch.id, ids[A_URL])
    assert A_URL not in await feed_ids(storage)


async def test_add_and_remove_chat_feeds(storage: SqlStorage) -> None:
    ids = await setup_feeds(storage)
    ch1 = await storage.get_channel("discord", "1")
    ch2 = await storage.get_channel("slack", "C2")
    st = await storage.add_feed(FeedSource(C_URL, "Outlet C", "de"), channel_id=ch1.id)
    assert (st.url, st.name, st.lang, st.origin) == (C_URL, "Outlet C", "de", "chat")
    with pytest.raises(InputError, match=r"already follows Outlet C"):
        await storage.add_feed(FeedSource(C_URL, "Other name"), channel_id=ch1.id)
    # a second channel reuses the row
    st2 = await storage.add_feed(FeedSource(C_URL, "Other name"), channel_id=ch2.id)
    assert st2.id == st.id
    assert st2.name == "Outlet C"

    assert [f.url for f in await storage.channel_feeds(ch1.id)] == [A_URL, B_URL, C_URL]
    await storage.remove_feed(ch1.id, st.id)
    assert [f.url for f in await storage.channel_feeds(ch1.id)] == [A_URL, B_URL]
    assert C_URL in await feed_ids(storage)  # ch2 still follows it
    await storage.remove_feed(ch2.id, st.id)
    assert C_URL not in await feed_ids(storage)
    assert C_URL not in [f.url for f in await storage.all_feeds()]

    # removing a config feed hides it for that channel only
    await storage.remove_feed(ch1.id, ids[B_URL])
    assert [f.url for f in await storage.channel_feeds(ch1.id)] == [A_URL]
    assert [f.url for f in await storage.channel_feeds(ch2.id)] == [A_URL, B_URL]
    assert B_URL in await feed_ids(storage)
    with pytest.raises(NotFoundError, match="does not follow"):
        await storage.remove_feed(ch1.id, ids[B_URL])
    with pytest.raises(NotFoundError):
        await storage.remove_feed(ch1.id, 9999)

    # re-adding a removed feed brings it back
    again = await storage.add_feed(FeedSource(C_URL, "Outlet C"), channel_id=ch1.id)
    assert again.id == st.id
    assert C_URL in await feed_ids(storage)


async def test_add_feed_needs_an_existing_channel(storage: SqlStorage) -> None:
    with pytest.raises(NotFoundError):
        await storage.add_feed(FeedSource(C_URL, "C"), channel_id=424242)
    assert await storage.all_feeds() == []


async def test_due_feeds_and_fetch_results(storage: SqlStorage) -> None:
    ids = await setup_feeds(storage)
    a, b = ids[A_URL], ids[B_URL]
    assert {f.id for f in await storage.due_feeds(T0)} == {a, b}

    await storage.record_fetch_success(
        a,
        at=T0,
        next_poll_at=T0 + timedelta(minutes=15),
        etag="e",
        last_modified=None,
        content_hash=None,
    )
    await storage.record_fetch_failure(
        b, at=T0, next_poll_at=T0 + timedelta(minutes=2), error="HTTP 503"
    )
    assert await storage.due_feeds(T0 + timedelta(minutes=1)) == []
    assert [f.id for f in await storage.due_feeds(T0 + timedelta(minutes=2))] == [b]
    assert {f.id for f in await storage.due_feeds(T0 + timedelta(hours=1))} == {a, b}

    await storage.record_fetch_failure(
        b,
        at=T0 + timedelta(minutes=2),
        next_poll_at=T0 + timedelta(minutes=6),
        error="timeout",
    )
    health = {f.id: f for f in await storage.all_feeds()}
    assert health[a].last_success_at == T0
    assert not health[a].failing
    assert health[b].consecutive_failures == 2
    assert health[b].failing
    assert health[b].last_error == "timeout"
    assert health[b].last_error_at == T0 + timedelta(minutes=2)
    assert health[b].last_success_at is None
    state_b = next(f for f in await storage.feed_states() if f.id == b)
    assert state_b.consecutive_failures == 2

    # a success resets the count and keeps the validators it is given
    await storage.record_fetch_success(
        b,
        at=T0 + timedelta(minutes=6),
        next_poll_at=T0 + DAY,
        etag=None,
        last_modified="lm",
        content_hash="hash",
    )
    state_b = next(f for f in await storage.feed_states() if f.id == b)
    assert state_b.consecutive_failures == 0
    assert (state_b.etag, state_b.last_modified, state_b.content_hash) == (None, "lm", "hash")

    with pytest.raises(NotFoundError):
        await storage.record_fetch_failure(999, at=T0, next_poll_at=T0, error="x")
    with pytest.raises(NotFoundError):
        await storage.record_fetch_success(
            999, at=T0, next_poll_at=T0, etag=None, last_modified=None, content_hash=None
        )


async def test_failures_between(storage: SqlStorage) -> None:
    ids = await setup_feeds(storage)
    await storage.record_fetch_failure(
        ids[A_URL], at=T0 - DAY, next_poll_at=T0, error="old failure"
    )
    await storage.record_fetch_failure(
        ids[B_URL], at=T0 + timedelta(hours=1), next_poll_at=T0, error="HTTP 404"
    )
    # A recovered since, but its failure in the window still counts
    await storage.record_fetch_success(
        ids[A_URL],
        at=T0 + timedelta(hours=2),
        next_poll_at=T0 + DAY,
        etag=None,
        last_modified=None,
        content_hash=None,
    )
    window = await storage.failures_between(T0, T0 + DAY)
    assert [f.url for f in window] == [B_URL]
    assert window[0].last_error == "HTTP 404"
    assert [f.url for f in await storage.failures_between(T0 - DAY, T0 + DAY)] == [A_URL, B_URL]
    assert await storage.failures_between(T0 + DAY, T0 + 2 * DAY) == []
    # end is exclusive
    assert await storage.failures_between(T0 - 2 * DAY, T0 - DAY) == []


async def test_feed_title_replaces_a_bare_url_name_only(storage: SqlStorage) -> None:
    ch = await storage.get_channel("discord", "1")
    st = await storage.add_feed(FeedSource(C_URL, C_URL), channel_id=ch.id)
    await setup_feeds(storage)
    ids = await feed_ids(storage)
    for feed_id in (st.id, ids[A_URL]):
        await storage.record_fetch_success(
            feed_id,
            at=T0,
            next_poll_at=T0,
            etag=None,
            last_modified=None,
            content_hash=None,
            title="  The Feed's Own Title ",
        )
    names = {f.url: f.name for f in await storage.feed_states()}
    assert names[C_URL] == "The Feed's Own Title"
    assert names[A_URL] == "Outlet A"


# -- items ---------------------------------------------------------------------------


async def test_insert_items_round_trip(storage: SqlStorage) -> None:
    ids = await setup_feeds(storage)
    shanghai = timezone(timedelta(hours=8))
    it = Item(
        guid="urn:1",
        title="Xi &amp; <b>Biden</b> meet",
        summary="<p>Talks in <a href='x'>Woodside</a></p>",
        link="https://news.test/1?utm_source=rss",
        canonical_link="https://news.test/1",
        published=datetime(2024, 3, 1, 20, 0, tzinfo=shanghai),
        feed_url=A_URL,
        source="Outlet A",
        lang="en",
    )
    bare = Item("urn:2", "No link", "", None, None, None, A_URL, "Outlet A")
    fetched = datetime(2024, 3, 1, 21, 0, tzinfo=shanghai)
    stored = await storage.insert_items(
        ids[A_URL], [(it, ["k1"]), (bare, ["k2"])], fetched_at=fetched
    )
    assert [s.item.guid for s in stored] == ["urn:1", "urn:2"]
    assert stored[0].fetched_at == T0 + timedelta(hours=1)
    assert stored[0].fetched_at.tzinfo == UTC
    assert stored[0].item.published == T0
    assert stored[0].item.published is not None
    assert stored[0].item.published.tzinfo == UTC

    back = await storage.items_between(T0 - DAY, T0 + DAY)
    assert {s.id for s in back} == {s.id for s in stored}
    got = next(s for s in back if s.item.guid == "urn:1")
    assert got.item == it  # raw title/summary kept, datetimes equal as instants
    assert got.item.published is not None
    assert got.item.published.tzinfo == UTC
    assert got.fetched_at.tzinfo == UTC
    assert got.feed_id == ids[A_URL]
    got_bare = next(s for s in back if s.item.guid == "urn:2")
    assert got_bare.item == bare
    assert got_bare.when == got_bare.fetched_at


async def test_naive_datetimes_are_refused(storage: SqlStorage) -> None:
    ids = await setup_feeds(storage)
    with pytest.raises(ValueError, match="naive"):
        await storage.insert_items(ids[A_URL], [(item(1), ["k"])], fetched_at=datetime(2024, 1, 1))
    with pytest.raises(ValueError, match="naive"):
        await storage.insert_items(
            ids[A_URL], [(item(1, published=datetime(2024, 1, 1)), ["k"])], fetched_at=T0
        )
    assert await storage.items_between(T0 - 1000 * DAY, T0 + DAY) == []


async def test_dedupe_across_feeds_and_within_a_batch(storage: SqlStorage) -> None:
    ids = await setup_feeds(storage)
    a, b = ids[A_URL], ids[B_URL]
    one, two, three = item(1), item(2), item(3)
    # same story twice in one batch (different guid, same canonical link)
    copy_of_two = Item(
        "urn:other",
        "Story number 2 (updated)",
        "",
        "https://news.test/2",
        "https://news.test/2",
        None,
        A_URL,
        "Outlet A",
    )
    stored = await storage.insert_items(
        a, [(one, keys(one)), (two, keys(two)), (copy_of_two, keys(copy_of_two))], fetched_at=T0
    )
    assert [s.item.guid for s in stored] == [one.guid, two.guid]

    # next poll: one old, one new
    stored = await storage.insert_items(
        a, [(one, keys(one)), (three, keys(three))], fetched_at=T0 + timedelta(minutes=15)
    )
    assert [s.item.guid for s in stored] == [three.guid]

    # another feed syndicating story 1 (same canonical link, different guid)
    syndicated = Item(
        "b-guid-1",
        "Story number 1",
        "",
        "https://news.test/1?ref=b",
        "https://news.test/1",
        None,
        B_URL,
        "Outlet B",
    )
    fresh = item(4, feed_url=B_URL, source="Outlet B")
    stored = await storage.insert_items(
        b, [(syndicated, keys(syndicated)), (fresh, keys(fresh))], fetched_at=T0
    )
    assert [s.item.guid for s in stored] == [fresh.guid]
    assert stored[0].feed_id == b
    assert await storage.count_items_since(T0 - DAY) == 4
    assert await storage.insert_items(a, [], fetched_at=T0) == []


async def test_items_without_keys_are_always_new(storage: SqlStorage) -> None:
    ids = await setup_feeds(storage)
    it = item(1)
    assert (
        len(await storage.insert_items(ids[A_URL], [(it, []), (it, ["", ""])], fetched_at=T0)) == 2
    )


async def test_items_between_and_count(storage: SqlStorage) -> None:
    ids = await setup_feeds(storage)
    a = ids[A_URL]
    old_published = item(1, published=T0 - 3 * DAY)  # fetched now, published long ago
    recent = item(2, published=T0 + timedelta(hours=1))
    undated = item(3)
    await storage.insert_items(a, [(old_published, ["1"])], fetched_at=T0)
    await storage.insert_items(a, [(recent, ["2"]), (undated, ["3"])], fetched_at=T0 + DAY)

    window = await storage.items_between(T0 - 4 * DAY, T0 - 2 * DAY)  # by published
    assert [s.item.guid for s in window] == [old_published.guid]
    window = await storage.items_between(T0, T0 + 2 * DAY)
    # newest first by published-else-fetched: undated (T0+1d), recent (T0+1h), old (T0-3d)
    assert [s.item.guid for s in window] == [undated.guid, recent.guid, old_published.guid]
    assert await storage.items_between(T0 + 2 * DAY, T0 + 3 * DAY) == []

    assert await storage.count_items_since(T0) == 3
    assert await storage.count_items_since(T0 + timedelta(seconds=1)) == 2
    assert await storage.count_items_since(T0 + 2 * DAY) == 0


async def test_concurrent_polls_store_each_item_once(storage: SqlStorage) -> None:
    ids = await setup_feeds(storage)
    batch_a = [(item(n), keys(item(n))) for n in range(40)]
    batch_b = [(item(n, feed_url=B_URL), keys(item(n))) for n in reversed(range(40))]
    results = await asyncio.gather(
        storage.insert_items(ids[A_URL], batch_a, fetched_at=T0),
        storage.insert_items(ids[B_URL], batch_b, fetched_at=T0),
        storage.insert_items(ids[A_URL], batch_a, fetched_at=T0),
    )
    new = [s.item.canonical_link for r in results for s in r]
    assert sorted(new) == sorted(f"https://news.test/{n}" for n in range(40))
    assert await storage.count_items_since(T0) == 40


async def test_two_connections_to_one_file_do_not_duplicate(tmp_path: Path) -> None:
    """Two storages on one SQLite file (like two processes): BEGIN IMMEDIATE and the
    unique key table keep the items unique."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}"
    first, second = SqlStorage(url), SqlStorage(url)
    await first.open()
    await second.open()
    try:
        await first.sync_config_feeds([FeedSource(A_URL, "A")])
        feed_id = (await first.feed_states())[0].id
        batch = [(item(n), keys(item(n))) for n in range(30)]
        results = await asyncio.gather(
            *(s.insert_items(feed_id, batch, fetched_at=T0) for s in (first, second, first))
        )
        assert sum(len(r) for r in results) == 30
        assert await second.count_items_since(T0) == 30
    finally:
        await first.close()
        await second.close()


# -- matches and channel views ---------------------------------------------------------


async def test_add_matches_is_idempotent(storage: SqlStorage) -> None:
    ids = await setup_feeds(storage)
    ch = await storage.get_channel("discord", "1")
    [s] = await storage.insert_items(ids[A_URL], [(item(1), ["1"])], fetched_at=T0)
    m = Match("xi", "Xi Jinping", Field.TITLE)
    await storage.add_matches(s.id, [m, Match("xi", "Xi", Field.SUMMARY)])
    await storage.add_matches(s.id, [m])
    await storage.add_matches(s.id, [])
    await storage.add_matches(s.id, [Match("xi", "习近平", Field.SUMMARY)], scope=ch.id)
    [view] = await storage.matched_items(ch.id, T0, T0 + DAY)
    # the default match is hidden only if the channel replaced "xi"; here both scopes
    # carry "xi": the default one (first alias wins) and the channel's own
    assert view.stored.id == s.id
    assert sorted((x.alias, x.field) for x in view.matches) == [
        ("Xi Jinping", Field.TITLE),
        ("习近平", Field.SUMMARY),
    ]


async def test_matched_items_channel_views(storage: SqlStorage) -> None:
    ids = await setup_feeds(storage)
    chat = "https://feeds.test/chat.xml"
    alice = await storage.get_channel("discord", "alice")
    bob = await storage.get_channel("slack", "bob")
    chat_feed = await storage.add_feed(FeedSource(chat, "Chat feed"), channel_id=bob.id)
    await storage.remove_feed(bob.id, ids[B_URL])

    s1, s2 = await storage.insert_items(
        ids[A_URL],
        [(item(1), ["1"]), (item(2, published=T0 + timedelta(hours=5)), ["2"])],
        fetched_at=T0,
    )
    [s3] = await storage.insert_items(
        ids[B_URL], [(item(3, feed_url=B_URL), ["3"])], fetched_at=T0 + timedelta(hours=1)
    )
    [s4] = await storage.insert_items(
        chat_feed.id, [(item(4, feed_url=chat), ["4"])], fetched_at=T0 + timedelta(hours=2)
    )
    [late] = await storage.insert_items(ids[A_URL], [(item(5), ["5"])], fetched_at=T0 + DAY)
    default = [Match("xi", "Xi", Field.TITLE), Match("trade", "tariff", Field.SUMMARY)]
    for s in (s1, s2, s3, s4, late):
        await storage.add_matches(s.id, default)
    await storage.add_matches(s1.id, [Match("chips", "TSMC", Field.TITLE)], scope=bob.id)
    await storage.add_matches(s2.id, [Match("xi", "习近平", Field.TITLE)], scope=bob.id)
    unmatched = await storage.insert_items(ids[A_URL], [(item(6), ["6"])], fetched_at=T0)
    assert unmatched

    # bob: no feed B, plus his chat feed; "trade" disabled; own "xi" replaces default xi;
    # own "chips"
    await storage.remove_channel_entry(bob.id, "trade")
    await storage.put_channel_entry(bob.id, "xi", {"id": "xi", "aliases": ["习近平"]}, "digest")
    await storage.put_channel_entry(
        bob.id, "chips", {"id": "chips", "aliases": ["TSMC"]}, "instant"
    )
    assert await storage.disabled_entries(bob.id) == {"trade"}

    def summary(view: list) -> list[tuple[int, list[tuple[str, str]]]]:
        return [(v.stored.id, [(m.entry_id, m.alias) for m in v.matches]) for v in view]

    window = (T0, T0 + DAY)
    assert summary(await storage.matched_items(alice.id, *window)) == [
        (s2.id, [("trade", "tariff"), ("xi", "Xi")]),  # published T0+5h: newest
        (s3.id, [("trade", "tariff"), ("xi", "Xi")]),
        (s1.id, [("trade", "tariff"), ("xi", "Xi")]),
    ]
    assert summary(await storage.matched_items(bob.id, *window)) == [
        (s2.id, [("xi", "习近平")]),
        (s1.id, [("chips", "TSMC")]),
    ]
    # s4 (chat feed) only matched default entries bob replaced or disabled
    await storage.enable_default_entry(bob.id, "trade")
    assert summary(await storage.matched_items(bob.id, *window)) == [
        (s2.id, [("trade", "tariff"), ("xi", "习近平")]),
        (s4.id, [("trade", "tariff")]),
        (s1.id, [("chips", "TSMC"), ("trade", "tariff")]),
    ]
    # one entry only
    assert summary(await storage.matched_items(bob.id, *window, entry_id="chips")) == [
        (s1.id, [("chips", "TSMC")])
    ]
    # removing his own "xi" brings the default "xi" back; his old xi matches are gone
    await storage.remove_channel_entry(bob.id, "xi")
    assert summary(await storage.matched_items(bob.id, *window, entry_id="xi")) == [
        (s2.id, [("xi", "Xi")]),
        (s4.id, [("xi", "Xi")]),
        (s1.id, [("xi", "Xi")]),
    ]
    assert await storage.disabled_entries(bob.id) == set()
    # end is exclusive, start inclusive
    assert [v.stored.id for v in await storage.matched_items(alice.id, T0 + DAY, T0 + 2 * DAY)] == [
        late.id
    ]
    # alice never sees bob's own matches or his chat feed
    assert await storage.matched_items(alice.id, *window, entry_id="chips") == []


async def test_channel_entries_round_trip(storage: SqlStorage) -> None:
    ch = await storage.get_channel("discord", "1")
    ids = await setup_feeds(storage)
    [s] = await storage.insert_items(ids[A_URL], [(item(1), ["1"])], fetched_at=T0)
    definition = {"id": "pm", "kind": "actor", "aliases": ["Li Qiang", "李强"], "min": 1}
    await storage.put_channel_entry(ch.id, "pm", definition, "digest")
    await storage.add_matches(s.id, [Match("pm", "Li Qiang", Field.TITLE)], scope=ch.id)
    [rec] = await storage.channel_entries(ch.id)
    assert (rec.entry_id, rec.definition, rec.mode) == ("pm", definition, "digest")

    # a mode change keeps the matches; a new definition drops them (to be re-matched)
    await storage.put_channel_entry(ch.id, "pm", definition, "instant")
    assert [r.mode for r in await storage.channel_entries(ch.id)] == ["instant"]
    assert len(await storage.matched_items(ch.id, T0, T0 + DAY)) == 1
    await storage.put_channel_entry(ch.id, "pm", {**definition, "aliases": ["Li"]}, "instant")
    assert await storage.matched_items(ch.id, T0, T0 + DAY) == []
    [rec] = await storage.channel_entries(ch.id)
    assert rec.definition["aliases"] == ["Li"]

    with pytest.raises(InputError, match="Mode"):
        await storage.put_channel_entry(ch.id, "x", {}, "loud")
    with pytest.raises(InputError, match="cannot be stored"):
        await storage.put_channel_entry(ch.id, "x", {"when": T0}, "digest")
    assert [r.entry_id for r in await storage.channel_entries(ch.id)] == ["pm"]
    other = await storage.get_channel("discord", "2")
    assert await storage.channel_entries(other.id) == []


# -- search ----------------------------------------------------------------------------


async def search_ids(storage: SqlStorage, query: str, **kw: object) -> list[int]:
    since = kw.pop("since", None)
    return [h.stored.id for h in await storage.search(query, since=since, **kw)]  # type: ignore[arg-type]


async def test_search_ranks_and_filters(storage: SqlStorage) -> None:
    ids = await setup_feeds(storage)
    a = ids[A_URL]
    rows = [
        item(1, title="Markets rally", summary="Chip export sanctions were eased on Monday"),
        item(2, title="New sanctions on chip exports", summary="The sanctions target chips"),
        item(3, title="Weather", summary="Rain expected"),
        item(4, title="Sanctions debate", summary="", published=T0 - 10 * DAY),
    ]
    stored = await storage.insert_items(a, [(r, [r.guid]) for r in rows], fetched_at=T0)
    by_guid = {s.item.guid: s.id for s in stored}

    hits = await storage.search("sanctions", since=None)
    ranked = [h.stored.id for h in hits]
    # a title match outranks a summary-only match
    assert set(ranked[:2]) == {by_guid["urn:guid:2"], by_guid["urn:guid:4"]}
    assert ranked[2] == by_guid["urn:guid:1"]
    assert [h.rank for h in hits] == sorted((h.rank for h in hits), reverse=True)
    # all words required
    assert await search_ids(storage, "chip sanctions") == [
        by_guid["urn:guid:2"],
        by_guid["urn:guid:1"],
    ]
    assert await search_ids(storage, "weather sanctions") == []
    # since filters on published-else-fetched
    assert by_guid["urn:guid:4"] not in await search_ids(storage, "sanctions", since=T0 - DAY)
    assert await search_ids(storage, "sanctions", limit=1) == ranked[:1]
    # HTML in the feed text is not searchable, its text is
    html_item = item(
        9, title="<b>Summit</b> &amp; talks", summary="<a href='https://spam.test'>x</a>"
    )
    [h] = await storage.insert_items(a, [(html_item, ["h"])], fetched_at=T0)
    assert await search_ids(storage, "summit") == [h.id]
    assert await search_ids(storage, "href") == []
    assert await search_ids(storage, "spam") == []


async def test_search_tolerates_any_user_input(storage: SqlStorage) -> None:
    ids = await setup_feeds(storage)
    [s] = await storage.insert_items(
        ids[A_URL],
        [
            (
                item(
                    1,
                    title="Xi's visit: AND/OR questions",
                    summary='He said "never" - NEAR the border',
                ),
                ["1"],
            )
        ],
        fetched_at=T0,
    )
    for query in [
        '"unbalanced',
        "AND OR",
        "Xi's",
        "NEAR(",
        "title:xi",
        "xi*",
        "(xi",
        "x-i",
        "'; DROP TABLE items; --",
        "a\\b",
        "xi^",
        "%_ xi",
        "NOT xi",
        "xi -",
    ]:
        await storage.search(query, since=None)  # never raises
    assert await search_ids(storage, "Xi's") == [s.id]
    # words, not operators (PostgreSQL drops them as English stop words)
    assert await search_ids(storage, "AND OR") == ([s.id] if storage.dialect == "sqlite" else [])
    assert await search_ids(storage, "xi AND questions") == [s.id]
    assert await search_ids(storage, '"never') == [s.id]
    assert await search_ids(storage, "NEAR border") == [s.id]
    for empty in ["", "   ", "*", '"" -', "_"]:
        with pytest.raises(InputError):
            await storage.search(empty, since=None)
    with pytest.raises(InputError, match="too long"):
        await storage.search("word " * 100, since=None)


async def test_search_prefix_and_case(storage: SqlStorage) -> None:
    ids = await setup_feeds(storage)
    [s] = await storage.insert_items(
        ids[A_URL], [(item(1, title="Zelenskyy meets European leaders"), ["1"])], fetched_at=T0
    )
    if storage.dialect == "sqlite":  # prefix match on the last word (FTS5)
        assert await search_ids(storage, "zelen") == [s.id]
    assert await search_ids(storage, "ZELENSKYY") == [s.id]
    assert await search_ids(storage, "european leader") == [s.id]


async def test_search_cjk(storage: SqlStorage) -> None:
    ids = await setup_feeds(storage)
    stored = await storage.insert_items(
        ids[A_URL],
        [
            (item(1, title="习近平会见拜登", summary="中美元首在旧金山举行会晤"), ["1"]),
            (
                item(2, title="李强出席论坛", summary="国务院总理李强发表演讲，谈及习近平经济思想"),
                ["2"],
            ),
            (item(3, title="Tokyo: 岸田首相が訪米", summary=""), ["3"]),
            (item(4, title="100%_增长", summary=""), ["4"]),
        ],
        fetched_at=T0,
    )
    s1, s2, s3, s4 = (s.id for s in stored)
    assert await search_ids(storage, "习近平") == [s1, s2]  # title beats summary
    assert await search_ids(storage, "李强") == [s2]  # two characters
    assert await search_ids(storage, "拜登 旧金山") == [s1]
    assert await search_ids(storage, "习近平 论坛") == [s2]
    assert await search_ids(storage, "岸田") == [s3]
    assert await search_ids(storage, "tokyo 岸田") == [s3]
    assert await search_ids(storage, "普京") == []
    assert await search_ids(storage, "%_增") == [s4]  # LIKE wildcards are literal
    assert await search_ids(storage, "%增") == []
    assert await search_ids(storage, "习近平", since=T0 + DAY) == []


async def test_search_index_follows_updates_and_deletes(storage: SqlStorage) -> None:
    ids = await setup_feeds(storage)
    [s] = await storage.insert_items(
        ids[A_URL], [(item(1, title="Original headline"), ["1"])], fetched_at=T0
    )
    async with storage.engine.begin() as conn:
        await conn.execute(
            text("UPDATE items SET title_plain = 'Corrected headline' WHERE id = :id"), {"id": s.id}
        )
    assert await search_ids(storage, "corrected") == [s.id]
    assert await search_ids(storage, "original") == []
    async with storage.engine.begin() as conn:
        await conn.execute(text("DELETE FROM items WHERE id = :id"), {"id": s.id})
    assert await search_ids(storage, "headline") == []


# -- channels --------------------------------------------------------------------------


async def test_channels(storage: SqlStorage) -> None:
    ch = await storage.get_channel(
        "discord", "123", guild_id="9", name="news", default_tz="Asia/Shanghai"
    )
    assert (ch.platform, ch.external_id, ch.guild_id, ch.name) == ("discord", "123", "9", "news")
    assert (ch.timezone, ch.digest_time, ch.digest_days, ch.group_by) == (
        "Asia/Shanghai",
        None,
        None,
        "entry",
    )
    assert ch.last_digest_at is None
    assert ch.paused_reason is None
    same = await storage.get_channel("discord", "123", default_tz="UTC")
    assert same == ch
    renamed = await storage.get_channel("discord", "123", name="world-news")
    assert (renamed.id, renamed.name, renamed.guild_id) == (ch.id, "world-news", "9")
    slack = await storage.get_channel("slack", "123")
    assert slack.id != ch.id
    assert [c.id for c in await storage.all_channels()] == [ch.id, slack.id]
    assert [c.id for c in await storage.all_channels("slack")] == [slack.id]
    assert await storage.channel_by_id(ch.id) == renamed
    with pytest.raises(NotFoundError):
        await storage.channel_by_id(12345)

    rec = await storage.set_schedule(ch.id, time="08:30", timezone="Europe/Berlin", days="Mon-Fri")
    assert (rec.digest_time, rec.timezone, rec.digest_days) == ("08:30", "Europe/Berlin", "mon-fri")
    rec = await storage.set_schedule(ch.id, time="21:05", timezone=None, days=None)
    assert (rec.digest_time, rec.timezone, rec.digest_days) == ("21:05", "Europe/Berlin", None)
    for bad in ("8:30", "24:00", "12:60", "noon"):
        with pytest.raises(InputError, match="HH:MM"):
            await storage.set_schedule(ch.id, time=bad, timezone=None, days=None)
    with pytest.raises(InputError, match="Unknown timezone"):
        await storage.set_schedule(ch.id, time="09:00", timezone="Mars/Olympus", days=None)
    assert (await storage.channel_by_id(ch.id)).digest_time == "21:05"
    rec = await storage.set_schedule(ch.id, time=None, timezone=None, days="mon")
    assert (rec.digest_time, rec.digest_days, rec.timezone) == (None, None, "Europe/Berlin")

    await storage.set_paused(ch.id, "Missing Access (403)")
    assert (await storage.channel_by_id(ch.id)).paused_reason == "Missing Access (403)"
    await storage.set_paused(ch.id, None)
    assert (await storage.channel_by_id(ch.id)).paused_reason is None
    await storage.set_last_digest_at(
        ch.id, datetime(2024, 3, 1, 9, tzinfo=timezone(timedelta(hours=1)))
    )
    assert (await storage.channel_by_id(ch.id)).last_digest_at == datetime(
        2024, 3, 1, 8, tzinfo=UTC
    )
    assert (await storage.set_group_by(ch.id, "story")).group_by == "story"
    with pytest.raises(InputError):
        await storage.set_group_by(ch.id, "mood")
    with pytest.raises(NotFoundError):
        await storage.set_paused(999, "x")


async def test_concurrent_get_channel_creates_one_row(storage: SqlStorage) -> None:
    recs = await asyncio.gather(*(storage.get_channel("discord", "7") for _ in range(5)))
    assert len({r.id for r in recs}) == 1
    assert len(await storage.all_channels()) == 1


# -- deliveries ------------------------------------------------------------------------


async def test_deliveries_are_created_once(storage: SqlStorage) -> None:
    ch = await storage.get_channel("discord", "1")
    other = await storage.get_channel("discord", "2")
    payload = {"title": "Morning brief", "stories": [{"id": 1, "title": "习近平"}]}
    d = await storage.create_delivery(ch.id, "digest", "digest:2024-03-01", payload, at=T0)
    assert d is not None
    assert (d.channel_id, d.kind, d.key, d.payload, d.status) == (
        ch.id,
        "digest",
        "digest:2024-03-01",
        payload,
        "pending",
    )
    assert d.nonce.isdigit()
    assert len(d.nonce) == 18
    assert (d.attempts, d.last_error, d.message_ids, d.sent_at) == (0, None, [], None)
    assert d.created_at == T0
    assert d.created_at.tzinfo == UTC
    assert await storage.create_delivery(ch.id, "digest", "digest:2024-03-01", {}, at=T0) is None
    # same key in another channel is another delivery
    d2 = await storage.create_delivery(other.id, "digest", "digest:2024-03-01", {}, at=T0)
    assert d2 is not None
    assert d2.nonce != d.nonce
    assert await storage.get_delivery(ch.id, "digest:2024-03-01") == d
    assert await storage.get_delivery(ch.id, "nope") is None

    # transient failure: still pending, nonce unchanged
    await storage.mark_failed(d.id, error="HTTP 502", permanent=False)
    [pending] = await storage.pending_deliveries(ch.id)
    assert (pending.id, pending.nonce, pending.attempts, pending.last_error) == (
        d.id,
        d.nonce,
        1,
        "HTTP 502",
    )
    await storage.mark_sent(d.id, at=T0 + timedelta(minutes=1), message_ids=["111", "222"])
    sent = await storage.get_delivery(ch.id, "digest:2024-03-01")
    assert sent is not None
    assert (sent.status, sent.sent_at, sent.message_ids, sent.attempts, sent.nonce) == (
        "sent",
        T0 + timedelta(minutes=1),
        ["111", "222"],
        2,
        d.nonce,
    )
    assert await storage.pending_deliveries(ch.id) == []
    assert [p.id for p in await storage.pending_deliveries()] == [d2.id]
    await storage.mark_failed(d2.id, error="Missing Access", permanent=True)
    failed = await storage.get_delivery(other.id, "digest:2024-03-01")
    assert failed is not None
    assert failed.status == "failed"
    assert await storage.pending_deliveries() == []
    with pytest.raises(NotFoundError):
        await storage.mark_sent(999, at=T0, message_ids=[])


async def test_concurrent_create_delivery_yields_one(storage: SqlStorage) -> None:
    ch = await storage.get_channel("discord", "1")
    made = await asyncio.gather(
        *(storage.create_delivery(ch.id, "alert", "alert:1", {"n": n}, at=T0) for n in range(6))
    )
    assert len([d for d in made if d is not None]) == 1


async def test_alerted(storage: SqlStorage) -> None:
    ids = await setup_feeds(storage)
    ch = await storage.get_channel("discord", "1")
    other = await storage.get_channel("discord", "2")
    s = await storage.insert_items(
        ids[A_URL], [(item(n), [str(n)]) for n in range(3)], fetched_at=T0
    )
    await storage.create_delivery(ch.id, "alert", "alert:a", {}, at=T0, item_ids=[s[0].id, s[1].id])
    await storage.create_delivery(ch.id, "digest", "digest:x", {}, at=T0, item_ids=[s[2].id])
    await storage.create_delivery(other.id, "alert", "alert:b", {}, at=T0, item_ids=[s[2].id])
    assert await storage.alerted(ch.id, [x.id for x in s]) == {s[0].id, s[1].id}
    assert await storage.alerted(other.id, [x.id for x in s]) == {s[2].id}
    assert await storage.alerted(ch.id, []) == set()


# -- errors opening a database: one clear message, nothing lost --------------------------


def _closed_port() -> int:
    """A loopback port nothing listens on."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_database_directory_that_cannot_be_created(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    with pytest.raises(ConfigError) as err:
        SqlStorage(f"sqlite+aiosqlite:///{blocker / 'data' / 'briefbot.db'}")
    message = str(err.value)
    assert f"cannot create the database directory {blocker / 'data'}" in message
    assert "storage.data_dir" in message
    assert err.value.exit_code == 2


async def test_corrupt_sqlite_file_is_a_storage_error_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "briefbot.db"
    junk = b"this is not SQLite\n" * 300
    path.write_bytes(junk)
    storage = SqlStorage(f"sqlite+aiosqlite:///{path}")
    with pytest.raises(StorageError) as err:
        await storage.open()
    message = str(err.value)
    assert f"Cannot read the database file {path}" in message
    assert "not a valid SQLite database" in message
    assert "move it aside" in message
    assert "\n" not in message
    await storage.close()
    assert path.read_bytes() == junk  # nothing overwritten


async def test_database_path_that_is_a_directory(tmp_path: Path) -> None:
    path = tmp_path / "briefbot.db"
    path.mkdir()
    storage = SqlStorage(f"sqlite+aiosqlite:///{path}")
    with pytest.raises(StorageError, match=r"Cannot open the database file .*briefbot\.db"):
        await storage.open()
    await storage.close()


async def test_unreachable_postgresql_server(tmp_path: Path) -> None:
    port = _closed_port()
    storage = SqlStorage(f"postgresql+asyncpg://briefbot:s3cret@127.0.0.1:{port}/briefbot")
    with pytest.raises(StorageError) as err:
        await storage.open()
    message = str(err.value)
    assert f"postgresql+asyncpg://briefbot:***@127.0.0.1:{port}/briefbot" in message
    assert "s3cret" not in message
    assert "is the PostgreSQL server running" in message
    await storage.close()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://briefbot:s3cret@127.0.0.1/briefbot", "add +asyncpg"),
        ("nonsense", "is not a database URL"),
        ("mysql://briefbot:s3cret@127.0.0.1/briefbot", "unsupported database 'mysql'"),
        ("sqlite:///briefbot.db", "add +aiosqlite"),
    ],
)
def test_unusable_database_url_is_a_config_error(url: str, expected: str) -> None:
    with pytest.raises(ConfigError) as err:
        SqlStorage(url)
    assert str(err.value).startswith("storage.database_url: ")
    assert expected in str(err.value)
    assert "s3cret" not in str(err.value)


def test_missing_driver_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "asyncpg", None)  # as if not installed
    with pytest.raises(ConfigError) as err:
        SqlStorage("postgresql+asyncpg://briefbot:s3cret@127.0.0.1/briefbot")
    assert "driver for postgresql+asyncpg://briefbot:***@127.0.0.1/briefbot is not installed" in (
        str(err.value)
    )
    assert "briefbot[postgres]" in str(err.value)


if PG_URL:

    async def test_postgres_unknown_database_is_a_storage_error() -> None:
        url = make_url(PG_URL).set(database=f"briefbot_missing_{uuid.uuid4().hex[:8]}")
        storage = SqlStorage(url.render_as_string(hide_password=False))
        with pytest.raises(StorageError, match="does not exist"):
            await storage.open()
        await storage.close()


# -- sightings: the outlets of duplicates ------------------------------------------------


def copy_of(it: Item, guid: str, *, feed_url: str, source: str, link: str) -> Item:
    """Another feed's copy of ``it``: its own guid and tracking link, the same article."""
    return Item(guid, it.title, "", link, it.canonical_link, None, feed_url, source)


async def test_a_duplicate_from_another_feed_is_a_sighting(storage: SqlStorage) -> None:
    ids = await setup_feeds(storage)
    a, b = ids[A_URL], ids[B_URL]
    one, two = item(1), item(2)
    [s1, s2] = await storage.insert_items(a, [(one, keys(one)), (two, keys(two))], fetched_at=T0)

    later = T0 + timedelta(minutes=15)
    via_b = copy_of(one, "b-1", feed_url=B_URL, source="Outlet B", link="https://news.test/1?ref=b")
    again_b = copy_of(one, "b-1-amp", feed_url=B_URL, source="Outlet B", link="https://news.test/1")
    fresh = item(4, feed_url=B_URL, source="Outlet B")
    fresh_twice = copy_of(fresh, "b-4-bis", feed_url=B_URL, source="Outlet B", link="x")
    stored = await storage.insert_items(
        b,
        [
            (via_b, keys(via_b)),
            (again_b, keys(again_b)),  # the same story twice in B's document
            (fresh, keys(fresh)),
            (fresh_twice, keys(fresh_twice)),  # B's own new item twice: no one to credit
        ],
        fetched_at=later,
    )
    assert [s.item.guid for s in stored] == [fresh.guid]
    expected = Sighting(b, "Outlet B", "https://news.test/1?ref=b", later)
    assert await storage.sightings([s1.id, s2.id, stored[0].id]) == {s1.id: (expected,)}

    # re-polls change nothing: B's copy again (the first sighting is kept), A's own items
    await storage.insert_items(b, [(via_b, keys(via_b))], fetched_at=later + DAY)
    await storage.insert_items(a, [(one, keys(one)), (two, keys(two))], fetched_at=later + DAY)
    assert await storage.sightings([s1.id, s2.id]) == {s1.id: (expected,)}
    assert await storage.count_items_since(T0 - DAY) == 3
    assert await storage.sightings([]) == {}


async def test_matched_items_carry_sightings_by_first_seen(storage: SqlStorage) -> None:
    ids = await setup_feeds(storage)
    c = (await storage.add_feed(FeedSource(C_URL, "Outlet C"), channel_id=None)).id
    ch = await storage.get_channel("discord", "1")
    one, two = item(1), item(2)
    [s1, _] = await storage.insert_items(
        ids[A_URL], [(one, keys(one)), (two, keys(two))], fetched_at=T0
    )
    await storage.add_matches_bulk([(s1.id, [Match("xi", "Xi", Field.TITLE)])])
    via_c = copy_of(one, "c-1", feed_url=C_URL, source="Outlet C", link="https://c.test/1")
    via_b = copy_of(one, "b-1", feed_url=B_URL, source="Outlet B", link="https://b.test/1")
    await storage.insert_items(c, [(via_c, keys(via_c))], fetched_at=T0 + timedelta(minutes=5))
    await storage.insert_items(
        ids[B_URL], [(via_b, keys(via_b))], fetched_at=T0 + timedelta(minutes=10)
    )
    [view] = await storage.matched_items(ch.id, T0, T0 + DAY)
    assert view.stored.id == s1.id
    assert [(s.source, s.feed_id, s.link) for s in view.sightings] == [
        ("Outlet C", c, "https://c.test/1"),
        ("Outlet B", ids[B_URL], "https://b.test/1"),
    ]
    assert all(s.seen_at.tzinfo == UTC for s in view.sightings)


async def test_concurrent_polls_credit_the_feed_that_did_not_store(storage: SqlStorage) -> None:
    ids = await setup_feeds(storage)
    a, b = ids[A_URL], ids[B_URL]
    batch_a = [(item(n), keys(item(n))) for n in range(40)]
    copies = [
        copy_of(item(n), f"b{n}", feed_url=B_URL, source="Outlet B", link="") for n in range(40)
    ]
    batch_b = [(c, keys(c)) for c in reversed(copies)]
    results = await asyncio.gather(
        storage.insert_items(a, batch_a, fetched_at=T0),
        storage.insert_items(b, batch_b, fetched_at=T0),
        storage.insert_items(a, batch_a, fetched_at=T0),
    )
    stored = [s for r in results for s in r]
    assert len(stored) == 40
    seen = await storage.sightings([s.id for s in stored])
    # every item was carried by both feeds: the one that did not store it is credited once
    assert sorted(seen) == sorted(s.id for s in stored)
    for s in stored:
        [sighting] = seen[s.id]
        assert sighting.feed_id == (b if s.feed_id == a else a)


async def test_a_key_claimed_by_another_writer_since_the_lookup_is_a_duplicate(
    storage: SqlStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The write path when another connection stored a key after our SELECT (the key
    table's ON CONFLICT DO NOTHING): the copy is not stored twice, and it is credited."""
    ids = await setup_feeds(storage)
    one = item(1)
    [s1] = await storage.insert_items(ids[A_URL], [(one, keys(one))], fetched_at=T0)
    real = SqlStorage._known_keys
    calls = 0

    async def stale_first_lookup(self: SqlStorage, conn, feed_id, keys_):  # type: ignore[no-untyped-def]
        nonlocal calls
        calls += 1
        return {} if calls == 1 else await real(self, conn, feed_id, keys_)

    monkeypatch.setattr(SqlStorage, "_known_keys", stale_first_lookup)
    via_b = copy_of(one, "b-1", feed_url=B_URL, source="Outlet B", link="https://b.test/1")
    other = item(7, feed_url=B_URL, source="Outlet B")
    stored = await storage.insert_items(
        ids[B_URL], [(via_b, keys(via_b)), (other, keys(other))], fetched_at=T0
    )
    assert [s.item.guid for s in stored] == [other.guid]
    assert await storage.count_items_since(T0) == 2
    [sighting] = (await storage.sightings([s1.id]))[s1.id]
    assert (sighting.feed_id, sighting.source) == (ids[B_URL], "Outlet B")
    monkeypatch.undo()
    # the loser's row and keys are gone: its keys still resolve to the first item
    again = copy_of(one, "b-1", feed_url=B_URL, source="Outlet B", link="https://b.test/1")
    assert await storage.insert_items(ids[B_URL], [(again, keys(again))], fetched_at=T0) == []


async def test_add_matches_bulk(storage: SqlStorage) -> None:
    ids = await setup_feeds(storage)
    ch = await storage.get_channel("discord", "1")
    stored = await storage.insert_items(
        ids[A_URL], [(item(n), [str(n)]) for n in range(3)], fetched_at=T0
    )
    xi, xi_summary = Match("xi", "Xi", Field.TITLE), Match("xi", "Xi", Field.SUMMARY)
    trade = Match("trade", "tariff", Field.SUMMARY)
    await storage.add_matches_bulk(
        [(stored[0].id, [xi, xi_summary, trade]), (stored[1].id, []), (stored[2].id, [trade])]
    )
    # idempotent, the first match per (item, entry) wins, also within one batch
    await storage.add_matches_bulk([(stored[0].id, [xi_summary]), (stored[0].id, [xi])])
    await storage.add_matches_bulk([])
    await storage.add_matches_bulk([(stored[2].id, [xi])], scope=ch.id)
    view = {v.stored.id: v.matches for v in await storage.matched_items(ch.id, T0, T0 + DAY)}
    assert view == {stored[0].id: (trade, xi), stored[2].id: (trade, xi)}
    assert [m.field for m in view[stored[0].id]] == [Field.SUMMARY, Field.TITLE]


async def test_a_batch_costs_a_few_statements_and_one_transaction(storage: SqlStorage) -> None:
    """insert_items and add_matches_bulk do not run statements per item (each one is an
    async round trip: 1.9 ms an item before they were batched)."""
    from sqlalchemy import event

    ids = await setup_feeds(storage)
    first = [(item(n), keys(item(n))) for n in range(100)]
    await storage.insert_items(ids[A_URL], first[:50], fetched_at=T0)
    statements: list[str] = []
    begins: list[int] = []

    def on_execute(conn, cursor, statement, *args):  # type: ignore[no-untyped-def]
        statements.append(statement)

    sync_engine = storage.engine.sync_engine
    event.listen(sync_engine, "before_cursor_execute", on_execute)
    event.listen(sync_engine, "begin", lambda conn: begins.append(1))
    try:
        # 50 stored already (duplicates), 50 new
        copies = [
            (copy_of(it, f"b{n}", feed_url=B_URL, source="Outlet B", link=""), k)
            for n, (it, k) in enumerate(first)
        ]
        stored = await storage.insert_items(ids[B_URL], copies, fetched_at=T0)
        assert len(stored) == 50
        assert len(begins) == 1
        assert len(statements) <= 8, statements
        statements.clear()
        begins.clear()
        await storage.add_matches_bulk([(s.id, [Match("xi", "Xi", Field.TITLE)]) for s in stored])
        assert len(begins) == 1
        assert len([s for s in statements if "matches" in s.lower()]) == 1
    finally:
        event.remove(sync_engine, "before_cursor_execute", on_execute)
    assert (
        len(await storage.sightings([s.id for s in await storage.items_between(T0, T0 + DAY)]))
        == 50
    )


async def test_a_story_stored_from_an_unfollowed_feed_reaches_a_channel_via_its_sighting(
    storage: SqlStorage,
) -> None:
    """No missed story: a channel that follows only feed C (an aggregator) sees the item
    first stored from config feed A, which it removed, because C carried it too."""
    ids = await setup_feeds(storage)
    ch = await storage.get_channel("discord", "aggregator-only")
    c = (await storage.add_feed(FeedSource(C_URL, "Outlet C"), channel_id=ch.id)).id
    await storage.remove_feed(ch.id, ids[A_URL])
    await storage.remove_feed(ch.id, ids[B_URL])
    one, two = item(1), item(2)
    [s1, s2] = await storage.insert_items(
        ids[A_URL], [(one, keys(one)), (two, keys(two))], fetched_at=T0
    )
    await storage.add_matches_bulk(
        [(s1.id, [Match("xi", "Xi", Field.TITLE)]), (s2.id, [Match("xi", "Xi", Field.TITLE)])]
    )
    assert await storage.matched_items(ch.id, T0, T0 + DAY) == []
    via_c = copy_of(one, "c-1", feed_url=C_URL, source="Outlet C", link="https://c.test/1")
    await storage.insert_items(c, [(via_c, keys(via_c))], fetched_at=T0 + timedelta(minutes=5))
    view = await storage.matched_items(ch.id, T0, T0 + DAY)
    assert [v.stored.id for v in view] == [s1.id]  # item two was never carried by C
    assert [s.source for s in view[0].sightings] == ["Outlet C"]


async def test_search_quoted_words_are_a_phrase(storage: SqlStorage) -> None:
    ids = await setup_feeds(storage)
    rows = [
        item(1, title="Export controls on AI chips widened"),
        item(2, title="Controls on rice export eased", summary="Export of grain controls"),
        item(3, title="Chips", summary="The new export controls bite"),
        item(4, title="Xi's visit to Paris ends", summary="A state visit"),
    ]
    stored = await storage.insert_items(
        ids[A_URL], [(r, [r.guid]) for r in rows], fetched_at=T0
    )
    s1, s2, s3, s4 = (s.id for s in stored)
    assert set(await search_ids(storage, "export controls")) == {s1, s2, s3}
    assert await search_ids(storage, '"export controls"') == [s1, s3]  # title first
    assert await search_ids(storage, "\u201cexport controls\u201d") == [s1, s3]  # typographic
    assert await search_ids(storage, '"export controls" chips') == [s1, s3]
    assert await search_ids(storage, 'chips "export controls"') == [s1, s3]
    assert await search_ids(storage, '"controls export"') == []  # order matters
    assert await search_ids(storage, '"rice export" "export controls"') == []
    assert await search_ids(storage, '"rice export" grain') == [s2]
    assert await search_ids(storage, '"Xi\'s visit"') == [s4]
    # a quoted word is exact, not a prefix; an unpaired quote is an ordinary character
    assert await search_ids(storage, '"expor"') == []
    assert set(await search_ids(storage, '"export controls')) == {s1, s2, s3}
    with pytest.raises(InputError):
        await storage.search('"" "  "', since=None)


async def test_search_fetched_since_is_the_fetch_time(storage: SqlStorage) -> None:
    ids = await setup_feeds(storage)
    late = item(1, title="Summit communique", published=T0 - 10 * DAY)  # fetched at T0
    old = item(2, title="Summit preview")
    [s_late] = await storage.insert_items(ids[A_URL], [(late, keys(late))], fetched_at=T0)
    [s_old] = await storage.insert_items(ids[A_URL], [(old, keys(old))], fetched_at=T0 - 3 * DAY)
    assert await search_ids(storage, "summit", since=T0 - DAY) == []  # published basis
    hits = await storage.search("summit", since=None, fetched_since=T0 - DAY)
    assert [h.stored.id for h in hits] == [s_late.id]
    both = await storage.search("summit", since=None, fetched_since=T0 - 4 * DAY)
    assert {h.stored.id for h in both} == {s_late.id, s_old.id}
