"""Poll cycles end to end: loopback feed server -> real fetcher -> real parser (process
pool) -> real SQL storage, with a FakeClock."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from feedserver import FeedServer, Reply, rss

from bot.config import HttpSettings, PollSettings, Settings
from bot.core.clock import FakeClock
from bot.core.models import FeedSource, Field, Match
from bot.core.ports import FeedState, MatchedItem
from bot.core.stories import cluster
from bot.core.text import plain
from bot.errors import UnsafeURLError
from bot.feeds.fetch import Fetcher
from bot.feeds.parse import ParsedFeed, ParserPool
from bot.feeds.poll import Poller
from bot.storage.sql import SqlStorage

T0 = datetime(2023, 11, 14, 8, 0, tzinfo=UTC)

STORY = {
    "title": "Wang Yi meets Blinken in Washington",
    "link": "https://wire.example/2023/10/27/wang-yi-blinken?utm_source=rss",
    "guid": "wire-1",
    "description": "The foreign minister&#8217;s visit runs Oct. 26&ndash;28.",
    "pubDate": "Fri, 27 Oct 2023 14:00:00 GMT",
}
OTHER = {
    "title": "Exports fell 6% in October",
    "link": "https://wire.example/2023/11/07/trade",
    "guid": "wire-2",
    "description": "Customs data.",
    "pubDate": "Tue, 07 Nov 2023 03:00:00 GMT",
}


class KeywordMatcher:
    """A stand-in watchlist: entry id -> a word looked for in the plain title/summary."""

    def __init__(self, words: dict[str, str], *, explode_on: str | None = None) -> None:
        self.words = words
        self.explode_on = explode_on

    def match(self, title: str, summary: str) -> list[Match]:
        title, summary = plain(title), plain(summary)
        if self.explode_on and self.explode_on in title:
            raise KeyError("a bug in the matcher")
        out = []
        for entry_id, word in self.words.items():
            if word in title:
                out.append(Match(entry_id, word, Field.TITLE))
            elif word in summary:
                out.append(Match(entry_id, word, Field.SUMMARY))
        return out


MATCHER = KeywordMatcher({"wang-yi": "Wang Yi", "antony-blinken": "Blinken"})


@pytest.fixture(scope="module")
def pool() -> Iterator[ParserPool]:
    p = ParserPool(kind="process")
    yield p
    p.close()


@pytest.fixture
async def server() -> AsyncIterator[FeedServer]:
    async with FeedServer() as s:
        yield s


@pytest.fixture
async def storage() -> AsyncIterator[SqlStorage]:
    s = SqlStorage("sqlite+aiosqlite:///:memory:")
    await s.open()
    yield s
    await s.close()


@pytest.fixture
async def fetcher() -> AsyncIterator[Fetcher]:
    async with Fetcher(HttpSettings(total_timeout=2), PollSettings()) as f:
        yield f


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


def make_poller(
    storage: SqlStorage,
    fetcher: Fetcher,
    clock: FakeClock,
    pool: ParserPool,
    matcher: KeywordMatcher = MATCHER,
    **kwargs: Any,
) -> Poller:
    return Poller(
        storage,
        fetcher,
        lambda: matcher,
        clock,
        Settings(),
        parser=pool,
        rng=random.Random(5),
        **kwargs,
    )


async def add_feeds(storage: SqlStorage, *sources: tuple[str, str]) -> list[FeedState]:
    await storage.sync_config_feeds([FeedSource(url, name) for url, name in sources])
    return await storage.feed_states()


async def health(storage: SqlStorage, feed_id: int):  # type: ignore[no-untyped-def]
    return next(h for h in await storage.all_feeds() if h.id == feed_id)


async def test_new_items_are_stored_matched_and_handed_to_the_hook(
    server: FeedServer,
    storage: SqlStorage,
    fetcher: Fetcher,
    clock: FakeClock,
    pool: ParserPool,
) -> None:
    url = server.feed("/wire.xml", rss([STORY, OTHER]), etag='"v1"')
    (feed,) = await add_feeds(storage, (url, "The Wire"))
    poller = make_poller(storage, fetcher, clock, pool)
    handed: list[MatchedItem] = []

    async def hook(items: list[MatchedItem]) -> None:
        handed.extend(items)

    poller.on_new_items = hook
    report = await poller.poll_once()

    (res,) = report.results
    assert res.error is None
    assert (res.new_items, res.seen_items, res.matched_items) == (2, 2, 1)
    assert res.next_poll_at is not None
    assert timedelta(minutes=14) <= res.next_poll_at - T0 <= timedelta(minutes=15)
    assert [m.stored.item.guid for m in handed] == ["wire-1", "wire-2"]
    assert {m.entry_id for m in handed[0].matches} == {"wang-yi", "antony-blinken"}
    assert handed[1].matches == ()
    assert handed[0].stored.item.source == "The Wire"
    assert handed[0].stored.fetched_at == T0
    # the matches are in storage for a channel's view
    channel = await storage.get_channel("console", "c1")
    # (published weeks before it was fetched: the window is on publication time, and
    # the item is backlog, kept out of digests unless max_age=None)
    seen = await storage.matched_items(
        channel.id, T0 - timedelta(days=60), T0 + timedelta(hours=1), max_age=None
    )
    assert [m.stored.item.guid for m in seen] == ["wire-1"]
    state = (await storage.feed_states())[0]
    assert state.etag == '"v1"'
    assert state.content_hash is not None
    assert state.id == feed.id


async def test_not_modified_and_unchanged_body_are_not_reparsed(
    server: FeedServer,
    storage: SqlStorage,
    fetcher: Fetcher,
    clock: FakeClock,
    pool: ParserPool,
) -> None:
    with_etag = server.feed("/etag.xml", rss([STORY]), etag='"v1"')
    no_validators = server.feed("/plain.xml", rss([OTHER]))
    await add_feeds(storage, (with_etag, "E"), (no_validators, "P"))

    calls: list[str] = []

    class SpyPool(ParserPool):
        async def parse(self, body: bytes, **kw: object) -> ParsedFeed:  # type: ignore[override]
            calls.append(str(kw["url"]))
            return await pool.parse(body, **kw)  # type: ignore[arg-type]

    poller = Poller(storage, fetcher, lambda: MATCHER, clock, Settings(), parser=SpyPool())
    first = await poller.poll_once()
    assert first.new_items == 2
    assert sorted(calls) == sorted([with_etag, no_validators])

    clock.advance(minutes=15)
    second = await poller.poll_once()
    by_url = {r.url: r for r in second.results}
    assert by_url[with_etag].not_modified
    assert server.requests["/etag.xml"][-1]["If-None-Match"] == '"v1"'
    assert by_url[no_validators].unchanged
    assert second.new_items == 0
    assert len(calls) == 2  # neither parsed again
    assert all(r.error is None for r in second.results)


async def test_a_changed_body_with_only_known_items_adds_nothing(
    server: FeedServer,
    storage: SqlStorage,
    fetcher: Fetcher,
    clock: FakeClock,
    pool: ParserPool,
) -> None:
    url = server.feed("/wire.xml", rss([STORY]))
    await add_feeds(storage, (url, "Wire"))
    poller = make_poller(storage, fetcher, clock, pool)
    assert (await poller.poll_once()).new_items == 1
    server.feed("/wire.xml", rss([STORY, OTHER], title="Wire (updated)"))
    clock.advance(minutes=15)
    report = await poller.poll_once()
    (res,) = report.results
    assert (res.new_items, res.already_stored) == (1, 1)


async def test_same_story_from_two_feeds_is_stored_once(
    server: FeedServer,
    storage: SqlStorage,
    fetcher: Fetcher,
    clock: FakeClock,
    pool: ParserPool,
) -> None:
    via_agg = dict(
        STORY,
        guid="agg-99",
        title="Chinese FM Wang Yi, Blinken hold talks",
        link="http://www.wire.example/2023/10/27/wang-yi-blinken/?fbclid=abc&ref=agg",
    )
    a = server.feed("/wire.xml", rss([STORY]))
    b = server.feed("/aggregator.xml", rss([via_agg, OTHER]))
    await add_feeds(storage, (a, "Wire"), (b, "Aggregator"))
    poller = make_poller(storage, fetcher, clock, pool)
    report = await poller.poll_once()
    assert report.new_items == 2  # the story once, plus OTHER
    assert report.already_stored == 1
    stored = await storage.items_between(T0 - timedelta(days=1), T0 + timedelta(days=1))
    assert (
        sorted(s.item.title for s in stored).count(STORY["title"])
        + sorted(s.item.title for s in stored).count(via_agg["title"])
        == 1
    )


async def test_failures_back_off_with_jitter_then_recover(
    server: FeedServer,
    storage: SqlStorage,
    fetcher: Fetcher,
    clock: FakeClock,
    pool: ParserPool,
) -> None:
    url = server.sequence("/flaky.xml", [Reply(status=500)] * 4 + [Reply(body=rss([STORY]))])
    (feed,) = await add_feeds(storage, (url, "Flaky"))
    poller = make_poller(storage, fetcher, clock, pool)
    delays = []
    for attempt in range(1, 5):
        report = await poller.poll_once()
        (res,) = report.results
        assert res.error is not None
        assert res.error.startswith("HTTP 500")
        h = await health(storage, feed.id)
        assert h.consecutive_failures == attempt
        assert h.last_error == res.error
        assert h.next_poll_at == res.next_poll_at
        assert res.next_poll_at is not None
        delay = (res.next_poll_at - clock.now()).total_seconds()
        raw = 60 * 2 ** (attempt - 1)
        assert 0.8 * raw <= delay <= raw
        delays.append(delay / raw)
        # not due a moment before its retry time
        clock.set(res.next_poll_at - timedelta(seconds=1))
        assert (await poller.poll_once()).results == []
        clock.set(res.next_poll_at)
    assert len(set(delays)) > 1  # jittered, not a fixed schedule
    report = await poller.poll_once()
    assert report.results[0].error is None
    assert report.new_items == 1
    h = await health(storage, feed.id)
    assert h.consecutive_failures == 0


async def test_retry_after_is_honoured(
    server: FeedServer,
    storage: SqlStorage,
    fetcher: Fetcher,
    clock: FakeClock,
    pool: ParserPool,
) -> None:
    url = server.status("/busy.xml", 503, headers={"Retry-After": "7200"})
    await add_feeds(storage, (url, "Busy"))
    report = await make_poller(storage, fetcher, clock, pool).poll_once()
    (res,) = report.results
    assert res.error is not None
    assert res.error.startswith("HTTP 503")
    assert res.next_poll_at == T0 + timedelta(seconds=7200)


async def test_one_bad_feed_does_not_break_the_cycle(
    server: FeedServer,
    storage: SqlStorage,
    clock: FakeClock,
    pool: ParserPool,
) -> None:
    good = server.feed("/good.xml", rss([STORY]))
    broken = server.status("/broken.xml", 500)
    html = server.feed(
        "/page.html", b"<!doctype html><html><body>Home</body></html>", content_type="text/html"
    )
    slow = server.slow("/slow.xml", rss([OTHER]), delay=3)
    buggy = server.feed("/buggy.xml", rss([dict(OTHER, guid="b1")]))
    await add_feeds(
        storage,
        (good, "Good"),
        (broken, "Broken"),
        (html, "Html"),
        (slow, "Slow"),
        (buggy, "Buggy"),
    )

    class BuggyPool(ParserPool):
        """The real pool, with a bug that strikes one feed."""

        async def parse(self, body: bytes, **kw: object) -> ParsedFeed:  # type: ignore[override]
            if str(kw["url"]).endswith("/buggy.xml"):
                raise ValueError("a bug")
            return await pool.parse(body, **kw)  # type: ignore[arg-type]

    async with Fetcher(HttpSettings(total_timeout=0.5), PollSettings()) as fetcher:
        poller = Poller(storage, fetcher, lambda: MATCHER, clock, Settings(), parser=BuggyPool())
        report = await poller.poll_once()
    errors = {r.name: r.error for r in report.results}
    assert errors["Good"] is None
    assert errors["Broken"] is not None
    assert errors["Broken"].startswith("HTTP 500")
    assert errors["Html"] is not None
    assert "web page (HTML)" in errors["Html"]
    assert errors["Slow"] == "timed out after 0.5s"
    assert errors["Buggy"] == "internal error while polling this feed (ValueError)"
    assert report.new_items == 1
    failing = {h.name: h for h in await storage.all_feeds() if h.failing}
    assert set(failing) == {"Broken", "Html", "Slow", "Buggy"}
    assert all(h.next_poll_at is not None and h.next_poll_at > T0 for h in failing.values())
    assert failing["Buggy"].last_error == errors["Buggy"]


async def test_a_matcher_bug_on_one_item_keeps_the_others(
    server: FeedServer,
    storage: SqlStorage,
    fetcher: Fetcher,
    clock: FakeClock,
    pool: ParserPool,
) -> None:
    trigger = dict(OTHER, title="TRIGGER with Wang Yi", guid="t1")
    url = server.feed("/wire.xml", rss([trigger, STORY]))
    await add_feeds(storage, (url, "Wire"))
    matcher = KeywordMatcher({"wang-yi": "Wang Yi"}, explode_on="TRIGGER")
    handed: list[MatchedItem] = []

    async def hook(items: list[MatchedItem]) -> None:
        handed.extend(items)

    poller = make_poller(storage, fetcher, clock, pool, matcher)
    poller.on_new_items = hook
    report = await poller.poll_once()
    (res,) = report.results
    assert res.error is None
    assert (res.new_items, res.matched_items, res.match_errors) == (2, 1, 1)
    assert [(m.stored.item.guid, len(m.matches)) for m in handed] == [("t1", 0), ("wire-1", 1)]
    assert "1 item(s) could not be matched" in report.summary()


async def test_a_failing_hook_is_reported_and_items_stay_stored(
    server: FeedServer,
    storage: SqlStorage,
    fetcher: Fetcher,
    clock: FakeClock,
    pool: ParserPool,
) -> None:
    url = server.feed("/wire.xml", rss([STORY]))
    await add_feeds(storage, (url, "Wire"))
    poller = make_poller(storage, fetcher, clock, pool)

    async def hook(_items: Sequence[MatchedItem]) -> None:
        raise RuntimeError("alerts are down")

    poller.on_new_items = hook
    report = await poller.poll_once()
    assert report.hook_error == "alerts are down"
    assert report.new_items == 1
    assert await storage.count_items_since(T0 - timedelta(days=30)) == 1


async def test_only_due_feeds_are_polled(
    server: FeedServer,
    storage: SqlStorage,
    fetcher: Fetcher,
    clock: FakeClock,
    pool: ParserPool,
) -> None:
    url = server.feed("/wire.xml", rss([STORY]))
    await add_feeds(storage, (url, "Wire"))
    poller = make_poller(storage, fetcher, clock, pool)
    await poller.poll_once()
    clock.advance(minutes=5)
    assert (await poller.poll_once()).results == []
    assert len((await poller.poll_once(only_due=False)).results) == 1
    assert len(server.requests["/wire.xml"]) == 2


async def test_permanent_redirect_is_reported(
    server: FeedServer,
    storage: SqlStorage,
    fetcher: Fetcher,
    clock: FakeClock,
    pool: ParserPool,
) -> None:
    new = server.feed("/new.xml", rss([dict(STORY, link="story.html", guid="r1")]))
    old = server.redirect("/old.xml", "/new.xml", status=301)
    await add_feeds(storage, (old, "Moved"))
    report = await make_poller(storage, fetcher, clock, pool).poll_once()
    (res,) = report.results
    assert res.permanent_redirect
    assert res.final_url == new
    stored = await storage.items_between(T0 - timedelta(days=30), T0 + timedelta(days=1))
    assert stored[0].item.link == server.url("/story.html")  # resolved against the final URL


async def test_event_loop_stays_responsive_while_a_large_feed_parses(
    server: FeedServer,
    storage: SqlStorage,
    clock: FakeClock,
    pool: ParserPool,
) -> None:
    filler = "<p>" + "Lorem <b>ipsum</b> dolor <a href='/x'>sit</a> amet. " * 60 + "</p>"
    items = [
        {
            "title": f"Story {i}",
            "link": f"https://big.example/{i}",
            "guid": f"big-{i}",
            "description": filler,
            "pubDate": "Wed, 01 Nov 2023 10:00:00 GMT",
        }
        for i in range(500)
    ]
    url = server.feed("/big.xml", rss(items))
    await add_feeds(storage, (url, "Big"))
    await pool.parse(rss([STORY]), url=url)  # workers started before timing
    gaps: list[float] = []
    done = asyncio.Event()

    async def heartbeat() -> None:
        last = time.perf_counter()
        while not done.is_set():
            await asyncio.sleep(0.005)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    async with Fetcher(HttpSettings(), PollSettings()) as fetcher:
        beat = asyncio.create_task(heartbeat())
        t0 = time.perf_counter()
        report = await make_poller(storage, fetcher, clock, pool).poll_once()
        took = time.perf_counter() - t0
        done.set()
        await beat
    assert report.new_items == 500
    assert took > 0.5, "the feed should take a while to parse for this test to mean much"
    # storing 500 items happens on the loop in small awaits; parsing must not block it.
    # (On a loaded machine every wake-up is late: the bound grows with the poll's own
    # slowdown, and still fails a parse on the loop, which blocks for most of the poll.)
    bound = max(0.25, took / 10)
    assert max(gaps) < bound, f"event loop blocked for {max(gaps):.2f}s during a {took:.1f}s poll"


async def test_feeds_added_from_chat_are_guarded_on_every_poll(
    server: FeedServer,
    storage: SqlStorage,
    fetcher: Fetcher,
    clock: FakeClock,
    pool: ParserPool,
) -> None:
    config_url = server.feed("/config.xml", rss([STORY]))
    chat_url = server.redirect("/chat.xml", "/internal.xml")
    server.feed("/internal.xml", rss([OTHER]))
    await add_feeds(storage, (config_url, "Config"))
    await storage.add_feed(FeedSource(chat_url, "Chat"), channel_id=None)
    checked: list[str] = []

    async def guard(url: str) -> None:
        checked.append(url)
        if url.endswith("/internal.xml"):
            raise UnsafeURLError("refused: 127.0.0.1 is a loopback address")

    poller = Poller(
        storage, fetcher, lambda: MATCHER, clock, Settings(), parser=pool, chat_url_guard=guard
    )
    report = await poller.poll_once()
    by_name = {r.name: r for r in report.results}
    assert by_name["Config"].error is None
    assert by_name["Chat"].error == "refused: 127.0.0.1 is a loopback address"
    assert checked == [chat_url, server.url("/internal.xml")]  # config feeds are trusted
    assert "/internal.xml" not in server.requests


def copy_of_story(guid: str, title: str) -> dict[str, str]:
    """Another outlet's copy of STORY: its own guid and title, the same article."""
    return dict(STORY, guid=guid, title=title, link=STORY["link"] + "&ref=" + guid)


async def test_feeds_store_in_feed_id_order_and_the_other_copies_are_credited(
    server: FeedServer,
    storage: SqlStorage,
    fetcher: Fetcher,
    clock: FakeClock,
    pool: ParserPool,
) -> None:
    """The copy of a story that gets stored does not depend on which feed answers first
    (the first feed by id answers last here): feeds store in id order, a failed feed
    does not hold the others up, and the other feeds' copies become sightings that
    credit their outlets, in the hook's items and in a channel's digest view."""
    first = server.slow("/first.xml", rss([STORY]), delay=0.6)
    broken = server.status("/broken.xml", 500)
    second = server.slow("/second.xml", rss([copy_of_story("s2", "Wang Yi, Blinken meet")]), 0.3)
    third = server.feed("/third.xml", rss([copy_of_story("s3", "Wang Yi in Washington"), OTHER]))
    feeds = await add_feeds(
        storage, (first, "First"), (broken, "Broken"), (second, "Second"), (third, "Third")
    )
    assert [f.name for f in sorted(feeds, key=lambda f: f.id)] == [
        "First",
        "Broken",
        "Second",
        "Third",
    ]
    ids = {f.name: f.id for f in feeds}
    handed: list[MatchedItem] = []

    async def hook(items: list[MatchedItem]) -> None:
        handed.extend(items)

    poller = make_poller(storage, fetcher, clock, pool)
    poller.on_new_items = hook
    report = await poller.poll_once()

    by_name = {r.name: r for r in report.results}
    assert [(n, by_name[n].new_items, by_name[n].already_stored) for n in ids] == [
        ("First", 1, 0),
        ("Broken", 0, 0),
        ("Second", 0, 1),
        ("Third", 1, 1),
    ]
    story = next(m for m in handed if m.stored.item.guid == "wire-1")
    assert story.stored.feed_id == ids["First"]
    assert [(s.source, s.feed_id) for s in story.sightings] == [
        ("Second", ids["Second"]),
        ("Third", ids["Third"]),
    ]
    assert story.sightings[0].link == STORY["link"] + "&ref=s2"
    assert cluster(handed)[0].outlets == ("First", "Second", "Third")

    channel = await storage.get_channel("console", "c1")
    [view] = await storage.matched_items(
        channel.id, T0 - timedelta(days=60), T0 + timedelta(hours=1), max_age=None
    )
    assert view.sightings == story.sightings

    # the next cycles record nothing twice
    clock.advance(minutes=15)
    server.feed(
        "/third.xml", rss([copy_of_story("s3", "Wang Yi in Washington"), OTHER], title="Third!")
    )
    again_report = await poller.poll_once(only_due=False)
    assert (again_report.new_items, again_report.already_stored) == (0, 2)
    [again] = await storage.matched_items(
        channel.id, T0 - timedelta(days=60), T0 + timedelta(hours=1), max_age=None
    )
    assert again.sightings == story.sightings


class CountingStorage(SqlStorage):
    """SqlStorage that records the poller's write calls."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        #: (method, items, fetch records)
        self.calls: list[tuple[str, int, int]] = []

    async def store_batch(self, parts, *, fetched_at, records=()):  # type: ignore[no-untyped-def]
        self.calls.append(("store_batch", sum(len(p.rows) for p in parts), len(records)))
        return await super().store_batch(parts, fetched_at=fetched_at, records=records)

    async def insert_items(self, feed_id, items_, *, fetched_at):  # type: ignore[no-untyped-def]
        self.calls.append(("insert_items", len(items_), 0))
        return await super().insert_items(feed_id, items_, fetched_at=fetched_at)

    async def add_matches(self, item_id, matches_, *, scope=None):  # type: ignore[no-untyped-def]
        self.calls.append(("add_matches", 1, 0))
        await super().add_matches(item_id, matches_, scope=scope)

    async def add_matches_bulk(self, batch, *, scope=None):  # type: ignore[no-untyped-def]
        self.calls.append(("add_matches_bulk", len(batch), 0))
        await super().add_matches_bulk(batch, scope=scope)

    async def record_fetch_success(self, feed_id, **kwargs):  # type: ignore[no-untyped-def]
        self.calls.append(("record_fetch_success", 0, 1))
        await super().record_fetch_success(feed_id, **kwargs)

    async def record_fetch_successes(self, records):  # type: ignore[no-untyped-def]
        self.calls.append(("record_fetch_successes", 0, len(records)))
        await super().record_fetch_successes(records)


async def test_items_and_matches_are_stored_a_batch_at_a_time(
    server: FeedServer, fetcher: Fetcher, clock: FakeClock, pool: ParserPool
) -> None:
    stories = [
        dict(STORY, guid=f"w{i}", link=f"https://wire.example/{i}", title=f"Wang Yi, day {i}")
        if i % 2 == 0
        else dict(OTHER, guid=f"o{i}", link=f"https://wire.example/{i}", title=f"Exports {i}")
        for i in range(250)
    ]
    url = server.feed("/wire.xml", rss(stories))
    storage = CountingStorage("sqlite+aiosqlite:///:memory:")
    await storage.open()
    try:
        await add_feeds(storage, (url, "Wire"))
        poller = make_poller(storage, fetcher, clock, pool, store_batch=100, store_linger=60)
        report = await poller.poll_once()
        assert (report.new_items, report.matched_items) == (250, 125)
        # one transaction per batch: the items with their matches (issue 9), and the
        # feed's fetch record with its last items
        assert storage.calls == [
            ("store_batch", 100, 0),
            ("store_batch", 100, 0),
            ("store_batch", 50, 1),
        ]
        channel = await storage.get_channel("console", "c1")
        seen = await storage.matched_items(
            channel.id, T0 - timedelta(days=60), T0 + timedelta(minutes=1), max_age=None
        )
        assert len(seen) == 125
        assert (await health(storage, report.results[0].feed_id)).last_success_at == T0
    finally:
        await storage.close()


async def test_a_batch_spans_feeds_with_their_fetch_records(
    server: FeedServer, fetcher: Fetcher, clock: FakeClock, pool: ParserPool
) -> None:
    """Storage in batches across feeds (issue 9): twelve feeds of 30 items, 100 items a
    batch, each feed's fetch record with its last items; a feed answering 304 next cycle
    has only its record written, with the others'."""
    sources = []
    for f in range(12):
        stories = [
            dict(OTHER, guid=f"f{f}-{i}", link=f"https://wire.example/{f}/{i}") for i in range(30)
        ]
        sources.append((server.feed(f"/f{f}.xml", rss(stories)), f"Feed {f}"))
    storage = CountingStorage("sqlite+aiosqlite:///:memory:")
    await storage.open()
    try:
        await add_feeds(storage, *sources)
        # batches fill by size, and the last when every feed has queued its items
        poller = make_poller(storage, fetcher, clock, pool, store_batch=100, store_linger=60)
        report = await poller.poll_once()
        assert report.new_items == 360
        assert not report.errors
        # 360 items across 12 feeds: four transactions, not twelve
        assert [c[1] for c in storage.calls] == [100, 100, 100, 60]
        assert sum(c[2] for c in storage.calls) == 12
        assert all(c[0] == "store_batch" for c in storage.calls)
        # every feed's items and validators are stored
        for state in await storage.feed_states():
            assert state.content_hash is not None
        storage.calls.clear()
        clock.advance(minutes=30)
        again = await poller.poll_once(only_due=False)
        assert sum(1 for r in again.results if r.unchanged or r.not_modified) == 12
        assert storage.calls == [("store_batch", 0, 12)]
    finally:
        await storage.close()


async def test_new_items_reach_the_hook_batch_by_batch_each_once(
    server: FeedServer,
    storage: SqlStorage,
    fetcher: Fetcher,
    clock: FakeClock,
    pool: ParserPool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A large cycle hands its new items over as they are committed (HANDOFF_BATCH at a
    time), not all at the end: each item once, the rest when the cycle ends."""
    from bot.feeds import poll as poll_module

    monkeypatch.setattr(poll_module, "HANDOFF_BATCH", 4)
    sources = []
    for f in range(4):
        stories = [
            dict(OTHER, guid=f"f{f}-{i}", link=f"https://wire.example/{f}/{i}") for i in range(3)
        ]
        sources.append((server.feed(f"/f{f}.xml", rss(stories)), f"Feed {f}"))
    await add_feeds(storage, *sources)
    calls: list[list[str]] = []

    async def hook(items: list[MatchedItem]) -> None:
        calls.append([m.stored.item.guid for m in items])

    poller = make_poller(storage, fetcher, clock, pool)
    poller.on_new_items = hook
    report = await poller.poll_once()
    assert report.new_items == 12
    handed = [g for call in calls for g in call]
    assert sorted(handed) == sorted(f"f{f}-{i}" for f in range(4) for i in range(3))
    assert len(calls) >= 2  # not held until the end
    assert all(len(call) >= 4 for call in calls[:-1])


async def test_a_cycle_starts_its_feeds_a_slice_at_a_time() -> None:
    """gather_staggered: every coroutine runs and its result comes back in order, but
    other tasks get the loop between slices of START_SLICE task starts (3,000 first
    steps in one turn of the loop held a chat command up)."""
    from bot.feeds.order import START_SLICE, gather_staggered

    events: list[str] = []

    async def feed(n: int) -> int:
        events.append("feed")
        await asyncio.sleep(0)
        return n * 2

    async def command() -> None:
        await asyncio.sleep(0)
        events.append("command")

    count = START_SLICE * 4
    other = asyncio.create_task(command())
    results = await gather_staggered([feed(n) for n in range(count)])
    await other
    assert results == [n * 2 for n in range(count)]
    # the command ran before the last slice's feeds had started
    assert events.index("command") < count
