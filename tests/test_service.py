"""The use cases behind every chat command, on real SQLite storage, a real fetcher and a
loopback feed server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from feedserver import FeedServer, rss

from bot.app import App, Config, build_app, service_options
from bot.config import SecuritySettings, Settings
from bot.core.clock import FakeClock
from bot.core.commands import Autocomplete
from bot.core.matching import compile_watchlist
from bot.core.models import FeedSource, Item
from bot.core.opml import export_opml, parse_opml
from bot.core.replies import ChannelContext
from bot.core.service import BriefingService
from bot.core.watchlist import default_watchlist, slugify
from bot.feeds.dedupe import keys_for_batch
from bot.feeds.fetch import Fetcher
from bot.feeds.guard import make_url_guard
from bot.feeds.parse import parse_feed_bytes
from bot.storage.base import ChannelRecord, StoredItem
from bot.storage.sql import SqlStorage

NOW = datetime(2023, 11, 15, 12, 0, tzinfo=UTC)
WIRE = FeedSource("https://wire.example/rss", "Wire")
OTHER = FeedSource("https://other.example/rss", "Other Times")
ADMIN = ChannelContext("console", "news", channel_name="news", user="ann", can_manage=True)
READER = ChannelContext("console", "news", channel_name="news", user="bob", can_manage=False)


@dataclass
class FakeSchedule:
    poll_at: datetime | None = None
    changed: list[ChannelRecord] = field(default_factory=list)

    def next_poll(self) -> datetime | None:
        return self.poll_at

    def next_digest(self, channel: ChannelRecord) -> datetime | None:
        if not channel.digest_time:
            return None
        return NOW + timedelta(hours=3)

    async def on_changed(self, channel: ChannelRecord) -> None:
        self.changed.append(channel)


@pytest.fixture
async def storage() -> AsyncIterator[SqlStorage]:
    s = SqlStorage("sqlite+aiosqlite:///:memory:")
    await s.open()
    await s.sync_config_feeds([WIRE, OTHER])
    yield s
    await s.close()


@pytest.fixture
async def server() -> AsyncIterator[FeedServer]:
    async with FeedServer() as srv:
        yield srv


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOW)


@pytest.fixture
def schedule() -> FakeSchedule:
    return FakeSchedule(poll_at=NOW + timedelta(minutes=10))


@pytest.fixture
async def service(
    storage: SqlStorage, clock: FakeClock, server: FeedServer, schedule: FakeSchedule
) -> AsyncIterator[BriefingService]:
    settings = Settings(security=SecuritySettings(allow_hosts=[f"127.0.0.1:{server.port}"]))
    async with Fetcher(settings.http, settings.poll) as fetcher:
        yield BriefingService(
            storage=storage,
            clock=clock,
            options=service_options(settings),
            watchlist=default_watchlist(),
            fetcher=fetcher,
            parse=parse_feed_bytes,
            schedule_info=schedule,
            on_schedule_changed=schedule.on_changed,
            url_guard=make_url_guard(settings.security.allow_hosts),
        )


async def feed_id(storage: SqlStorage, url: str) -> int:
    return next(f.id for f in await storage.all_feeds() if f.url == url)


async def seed(
    storage: SqlStorage,
    titles: list[str],
    *,
    feed: FeedSource = WIRE,
    ago: timedelta = timedelta(hours=2),
    summary: str = "",
) -> list[StoredItem]:
    """Store items as the poller would: fetched ``ago`` before NOW, default matches."""
    fid = await feed_id(storage, feed.url)
    when = NOW - ago
    items = []
    for t in titles:
        link = f"{feed.url.removesuffix('/rss')}/{slugify(t) or abs(hash(t))}"
        items.append(Item(
            guid=link, title=t, summary=summary, link=link, canonical_link=link,
            published=when, feed_url=feed.url, source=feed.name,
        ))
    stored = await storage.insert_items(fid, keys_for_batch(items), fetched_at=when)
    matcher = compile_watchlist(default_watchlist())
    for s in stored:
        found = matcher.match(s.item.title, s.item.summary)
        if found:
            await storage.add_matches(s.id, found, scope=None)
    return stored


def titles_in(reply) -> list[str]:  # type: ignore[no-untyped-def]
    assert reply.digest is not None
    return [line.title for line in reply.digest.lines()]


# -- /brief ----------------------------------------------------------------------------


async def test_brief_shows_matched_stories_visible_to_the_channel(
    service: BriefingService, storage: SqlStorage
) -> None:
    await seed(storage, ["Wang Yi meets Blinken in Washington", "Local bakery wins prize"])
    await seed(storage, ["Putin visits Beijing"], ago=timedelta(hours=30))
    reply = await service.dispatch(ADMIN, "brief", {})
    assert not reply.error
    assert not reply.ephemeral
    assert reply.digest is not None
    assert reply.digest.kind == "brief"
    assert titles_in(reply) == ["Wang Yi meets Blinken in Washington"]  # 24 h by default
    longer = await service.dispatch(ADMIN, "brief", {"hours": 48})
    assert sorted(titles_in(longer)) == [
        "Putin visits Beijing", "Wang Yi meets Blinken in Washington"]
    one = await service.dispatch(ADMIN, "brief", {"entry": "Vladimir Putin", "hours": 48})
    assert titles_in(one) == ["Putin visits Beijing"]
    assert one.digest is not None
    assert one.digest.title == "Brief: Vladimir Putin"


async def test_brief_bad_input(service: BriefingService) -> None:
    reply = await service.dispatch(ADMIN, "brief", {"entry": "putn"})
    assert reply.error
    assert reply.ephemeral
    assert "No watchlist entry 'putn'" in reply.text
    reply = await service.dispatch(ADMIN, "brief", {"hours": 0})
    assert reply.error
    assert "hours must be at least 1" in reply.text
    reply = await service.dispatch(ADMIN, "brief", {"colour": "red"})
    assert reply.error
    assert "has no option 'colour'" in reply.text


async def test_unknown_command_is_an_error_reply(service: BriefingService) -> None:
    reply = await service.dispatch(ADMIN, "frobnicate", {})
    assert reply.error
    assert "unknown command" in reply.text


# -- permissions -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "args"),
    [
        ("track", {"kind": "actor", "name": "Li Qiang"}),
        ("untrack", {"entry": "wang-yi"}),
        ("digest schedule", {"time": "08:00"}),
        ("digest off", {}),
        ("feeds add", {"url": "https://example.com/feed"}),
        ("feeds remove", {"feed": "1"}),
        ("feeds import", {"file": export_opml([FeedSource("https://x.example/rss", "X")])}),
    ],
)
async def test_configuration_commands_need_the_manage_permission(
    service: BriefingService, storage: SqlStorage, schedule: FakeSchedule, command: str,
    args: dict[str, object],
) -> None:
    channel = await service.channel(ADMIN)
    await storage.set_schedule(channel.id, time="07:00", timezone="UTC", days=None)
    before_feeds = await storage.channel_feeds(channel.id)
    reply = await service.dispatch(READER, command, args)
    assert reply.error
    assert reply.ephemeral
    assert "Manage Server" in reply.text
    after = await storage.channel_by_id(channel.id)
    assert after.digest_time == "07:00"
    assert await storage.channel_entries(channel.id) == []
    assert await storage.disabled_entries(channel.id) == set()
    assert await storage.channel_feeds(channel.id) == before_feeds
    assert schedule.changed == []


async def test_readers_may_look(service: BriefingService) -> None:
    for command in ("brief", "watchlist", "status", "feeds list", "feeds export", "help"):
        reply = await service.dispatch(READER, command, {})
        assert not reply.error, (command, reply.text)


# -- /track, /untrack, /watchlist ------------------------------------------------------


async def test_track_rematches_recent_items_so_brief_shows_them(
    service: BriefingService, storage: SqlStorage
) -> None:
    await seed(storage, ["Premier Li Qiang opens trade fair"], ago=timedelta(days=2))
    await seed(storage, ["李强会见外宾"], feed=OTHER, ago=timedelta(days=3))
    await seed(storage, ["Li Qiang in 2019"], ago=timedelta(days=9))  # past the window
    before = await service.dispatch(ADMIN, "brief", {"hours": 24 * 10})
    assert before.digest is not None
    assert before.digest.is_empty
    reply = await service.dispatch(
        ADMIN, "track",
        {"kind": "actor", "name": "Li Qiang", "aliases": "Premier Li,李强", "mode": "instant"},
    )
    assert not reply.error, reply.text
    assert reply.ephemeral
    assert "Tracking Li Qiang (actor, id li-qiang)" in reply.text
    assert "2 stored stories from the last 7 days match" in reply.text
    brief = await service.dispatch(ADMIN, "brief", {"entry": "li-qiang", "hours": 24 * 10})
    assert sorted(titles_in(brief)) == ["Premier Li Qiang opens trade fair", "李强会见外宾"]
    channel = await service.channel(ADMIN)
    [rec] = await storage.channel_entries(channel.id)
    assert (rec.entry_id, rec.mode) == ("li-qiang", "instant")
    # the channel's watchlist shows it with its aliases, next to the defaults
    wl = (await service.dispatch(READER, "watchlist", {})).text
    assert "• Li Qiang (li-qiang) [this channel's, instant]" in wl
    assert "aliases: Li Qiang, Premier Li, 李强" in wl
    assert "• Wang Yi (wang-yi) [default]" in wl
    # another channel does not see it
    other = ChannelContext("console", "elsewhere", can_manage=True)
    brief = await service.dispatch(other, "brief", {"entry": "li-qiang"})
    assert brief.error


async def test_track_bad_input_leaves_state_unchanged(
    service: BriefingService, storage: SqlStorage
) -> None:
    channel = await service.channel(ADMIN)
    cases = [
        ({"kind": "person", "name": "Li Qiang"}, "kind must be one of"),
        ({"kind": "actor", "name": "the"}, "too common"),
        ({"kind": "actor", "name": "Li Qiang", "aliases": "x"}, "too short"),
        ({"kind": "actor", "name": "Li Qiang", "mode": "loud"}, "mode must be one of"),
        ({"kind": "topic", "name": "Wang Yi"}, "default actor entry"),
        ({"kind": "actor", "name": "Wang Yi"}, "already tracked here"),
        ({"kind": "actor"}, "needs name"),
    ]
    for args, message in cases:
        reply = await service.dispatch(ADMIN, "track", args)
        assert reply.error, args
        assert message in reply.text, (args, reply.text)
    assert await storage.channel_entries(channel.id) == []
    assert await storage.disabled_entries(channel.id) == set()
    # tracking the same name twice is refused the second time
    first = await service.dispatch(ADMIN, "track", {"kind": "topic", "name": "Rare earths"})
    assert not first.error
    again = await service.dispatch(ADMIN, "track", {"kind": "topic", "name": "rare earths"})
    assert again.error
    assert "already tracked here" in again.text
    assert [r.entry_id for r in await storage.channel_entries(channel.id)] == ["rare-earths"]


async def test_untrack_a_default_entry_then_bring_it_back(
    service: BriefingService, storage: SqlStorage
) -> None:
    await seed(storage, ["Wang Yi meets Blinken"])
    channel = await service.channel(ADMIN)
    reply = await service.dispatch(ADMIN, "untrack", {"entry": "Wang Yi"})
    assert "Stopped tracking the default entry Wang Yi" in reply.text
    assert await storage.disabled_entries(channel.id) == {"wang-yi"}
    brief = await service.dispatch(ADMIN, "brief", {})
    assert brief.digest is not None
    assert {w.entry_id for line in brief.digest.lines() for w in line.why} == {"antony-blinken"}
    assert "Default entries turned off here: wang-yi" in (
        await service.dispatch(ADMIN, "watchlist", {})).text
    missing = await service.dispatch(ADMIN, "untrack", {"entry": "wang-yi"})
    assert missing.error
    back = await service.dispatch(ADMIN, "track", {"kind": "actor", "name": "Wang Yi"})
    assert "Tracking Wang Yi (wang-yi) again" in back.text
    assert "1 stored story" in back.text
    assert await storage.disabled_entries(channel.id) == set()
    assert await storage.channel_entries(channel.id) == []


async def test_instant_mode_on_a_default_entry_makes_a_channel_copy(
    service: BriefingService, storage: SqlStorage
) -> None:
    channel = await service.channel(ADMIN)
    reply = await service.dispatch(
        ADMIN, "track", {"kind": "actor", "name": "Wang Yi", "aliases": "Mr. Wang Yi",
                         "mode": "instant"}
    )
    assert not reply.error, reply.text
    assert "channel copy" in reply.text
    [rec] = await storage.channel_entries(channel.id)
    assert rec.entry_id == "wang-yi"
    assert rec.mode == "instant"
    assert "王毅" in rec.definition["aliases"]  # the default's aliases are kept
    assert "Mr. Wang Yi" in rec.definition["aliases"]
    undo = await service.dispatch(ADMIN, "untrack", {"entry": "wang-yi"})
    assert "the default entry is tracked again" in undo.text
    assert await storage.channel_entries(channel.id) == []
    assert await storage.disabled_entries(channel.id) == set()


async def test_unusable_stored_entry_is_skipped_not_fatal(
    service: BriefingService, storage: SqlStorage
) -> None:
    channel = await service.channel(ADMIN)
    await storage.put_channel_entry(channel.id, "broken", {"id": "broken", "kind": "x"}, "digest")
    reply = await service.dispatch(ADMIN, "watchlist", {})
    assert not reply.error
    assert "broken" not in reply.text


# -- /digest ---------------------------------------------------------------------------


async def test_digest_schedule_and_off(
    service: BriefingService, storage: SqlStorage, schedule: FakeSchedule
) -> None:
    reply = await service.dispatch(
        ADMIN, "digest schedule", {"time": "7:30", "tz": "Asia/Shanghai", "days": "weekdays"}
    )
    assert not reply.error, reply.text
    assert "Digest scheduled at 07:30 (Asia/Shanghai), on mon-fri." in reply.text
    assert "Next digest:" in reply.text
    channel = await service.channel(ADMIN)
    assert (channel.digest_time, channel.timezone, channel.digest_days) == (
        "07:30", "Asia/Shanghai", "mon-fri")
    assert [c.digest_time for c in schedule.changed] == ["07:30"]
    off = await service.dispatch(ADMIN, "digest off", {})
    assert "turned off" in off.text
    channel = await service.channel(ADMIN)
    assert channel.digest_time is None
    assert channel.timezone == "Asia/Shanghai"
    assert [c.digest_time for c in schedule.changed] == ["07:30", None]
    again = await service.dispatch(ADMIN, "digest off", {})
    assert "no scheduled digest" in again.text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"time": "25:00"}, "not a time of day"),
        ({"time": "8 am"}, "not a time of day"),
        ({"time": "08:00", "tz": "Mars/Olympus"}, "Unknown timezone"),
        ({"time": "08:00", "days": "someday"}, "is not a day"),
        ({"time": "08:00", "days": "mon-fri-sun"}, "not a day or a range"),
        ({}, "needs time"),
    ],
)
async def test_digest_schedule_bad_input_changes_nothing(
    service: BriefingService, storage: SqlStorage, schedule: FakeSchedule,
    args: dict[str, str], message: str,
) -> None:
    channel = await service.channel(ADMIN)
    await storage.set_schedule(channel.id, time="06:00", timezone="Europe/Paris", days="mon")
    reply = await service.dispatch(ADMIN, "digest schedule", args)
    assert reply.error
    assert message in reply.text
    after = await storage.channel_by_id(channel.id)
    assert (after.digest_time, after.timezone, after.digest_days) == (
        "06:00", "Europe/Paris", "mon")
    assert schedule.changed == []


async def test_digest_now_without_a_sink_answers_with_the_digest(
    service: BriefingService, storage: SqlStorage
) -> None:
    await seed(storage, ["Yellen and He Lifeng hold talks"])
    reply = await service.dispatch(ADMIN, "digest now", {})
    assert not reply.ephemeral
    assert reply.digest is not None
    assert reply.digest.kind == "digest"
    assert titles_in(reply) == ["Yellen and He Lifeng hold talks"]


async def test_build_channel_digest_covers_since_the_last_digest(
    service: BriefingService, storage: SqlStorage
) -> None:
    await seed(storage, ["Old: Putin visits Beijing"], ago=timedelta(hours=20))
    await seed(storage, ["New: Wang Yi meets Blinken"], ago=timedelta(hours=1))
    channel = await service.channel(ADMIN)
    first = await service.build_channel_digest(channel, NOW)
    assert first.period_start == NOW - timedelta(hours=24)
    assert len(list(first.lines())) == 2
    await storage.set_last_digest_at(channel.id, NOW - timedelta(hours=5))
    channel = await storage.channel_by_id(channel.id)
    second = await service.build_channel_digest(channel, NOW)
    assert [line.title for line in second.lines()] == ["New: Wang Yi meets Blinken"]


# -- /feeds ----------------------------------------------------------------------------

FEED = rss(
    [
        {"title": "Wang Yi lands in Washington", "link": "https://wire.example/a",
         "guid": "a", "pubDate": "Wed, 15 Nov 2023 09:00:00 GMT"},
        {"title": "Markets calm", "link": "https://wire.example/b", "guid": "b"},
    ],
    title="Loopback Wire",
)


async def test_feeds_add_fetches_once_and_subscribes(
    service: BriefingService, storage: SqlStorage, server: FeedServer
) -> None:
    url = server.feed("/rss.xml", FEED)
    reply = await service.dispatch(ADMIN, "feeds add", {"url": url})
    assert not reply.error, reply.text
    assert "Added Loopback Wire: 2 items in the feed now" in reply.text
    assert len(server.requests["/rss.xml"]) == 1
    channel = await service.channel(ADMIN)
    feeds = {f.url: f.name for f in await storage.channel_feeds(channel.id)}
    assert feeds[url] == "Loopback Wire"
    again = await service.dispatch(ADMIN, "feeds add", {"url": url})
    assert again.error
    assert "already follows" in again.text
    named = await service.dispatch(
        ADMIN, "feeds add", {"url": server.feed("/two.xml", FEED), "name": "My Wire"})
    assert "Added My Wire" in named.text


async def test_feeds_add_follows_a_permanent_redirect(
    service: BriefingService, storage: SqlStorage, server: FeedServer
) -> None:
    new_url = server.feed("/new.xml", FEED)
    old_url = server.redirect("/old.xml", "/new.xml", status=301)
    reply = await service.dispatch(ADMIN, "feeds add", {"url": old_url})
    assert f"(it moved to {new_url})" in reply.text
    channel = await service.channel(ADMIN)
    assert new_url in {f.url for f in await storage.channel_feeds(channel.id)}


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda s: s.status("/gone", 404), "could not be fetched: HTTP 404"),
        (lambda s: s.feed("/page", b"<!DOCTYPE html><html><body>hi</body></html>",
                          content_type="text/html"), "web page (HTML)"),
        (lambda s: s.feed("/junk", b"just some text, not xml", content_type="text/plain"),
         "not a feed"),
        (lambda s: s.redirect("/sneaky", "http://10.0.0.7/feed.xml"), "private address"),
        (lambda s: s.redirect("/meta", "http://169.254.169.254/latest/meta-data/"),
         "cloud metadata"),
        (lambda s: s.redirect("/local", f"http://localhost:{s.port}/rss.xml"), "loopback"),
        (lambda s: "http://10.1.2.3/rss", "private address"),
        (lambda s: "http://[::1]:8080/rss", "loopback"),
        (lambda s: "http://localhost/rss", "localhost resolves to"),
        (lambda s: f"http://127.0.0.1:{s.port + 1 if s.port < 65535 else 1}/rss", "loopback"),
        (lambda s: "ftp://example.com/rss", "only http:// and https://"),
        (lambda s: "file:///etc/passwd", "only http:// and https://"),
    ],
)
async def test_feeds_add_refuses_what_is_not_a_public_feed(
    service: BriefingService, storage: SqlStorage, server: FeedServer, setup, message: str  # type: ignore[no-untyped-def]
) -> None:
    server.feed("/rss.xml", FEED)
    url = setup(server)
    channel = await service.channel(ADMIN)
    before = await storage.all_feeds()
    reply = await service.dispatch(ADMIN, "feeds add", {"url": url})
    assert reply.error
    assert reply.text.startswith("Not added") or "refused" in reply.text
    assert message in reply.text, reply.text
    assert await storage.all_feeds() == before
    assert url not in {f.url for f in await storage.channel_feeds(channel.id)}


async def test_feeds_list_remove_and_health(
    service: BriefingService, storage: SqlStorage, clock: FakeClock
) -> None:
    other_id = await feed_id(storage, OTHER.url)
    await storage.record_fetch_failure(
        other_id, at=NOW - timedelta(minutes=5), next_poll_at=NOW + timedelta(minutes=25),
        error="HTTP 503 Service Unavailable",
    )
    wire_id = await feed_id(storage, WIRE.url)
    await storage.record_fetch_success(
        wire_id, at=NOW - timedelta(minutes=3), next_poll_at=NOW + timedelta(minutes=12),
        etag=None, last_modified=None, content_hash=None,
    )
    listing = (await service.dispatch(READER, "feeds list", {})).text
    assert "2 feeds (1 failing):" in listing
    assert "✗ failing (1× in a row): HTTP 503 Service Unavailable" in listing
    assert "✓ ok, last success 3 min ago · next poll in 12 min" in listing
    channel = await service.channel(ADMIN)
    ambiguous = await service.dispatch(ADMIN, "feeds remove", {"feed": "nope"})
    assert ambiguous.error
    assert "no feed 'nope'" in ambiguous.text
    removed = await service.dispatch(ADMIN, "feeds remove", {"feed": "other times"})
    assert "Removed Other Times" in removed.text
    assert [f.url for f in await storage.channel_feeds(channel.id)] == [WIRE.url]
    by_number = await service.dispatch(ADMIN, "feeds remove", {"feed": "1"})
    assert "Removed Wire" in by_number.text
    assert await storage.channel_feeds(channel.id) == []
    empty = await service.dispatch(READER, "feeds list", {})
    assert "follows no feeds" in empty.text
    # the other channel still has the config feeds
    assert len(await storage.channel_feeds((await service.channel(
        ChannelContext("console", "b"))).id)) == 2


async def test_opml_import_export_round_trip(
    service: BriefingService, storage: SqlStorage, server: FeedServer
) -> None:
    a = server.feed("/a.xml", FEED)
    b = server.feed("/b.xml", FEED)
    bad = server.status("/bad.xml", 500)
    opml = export_opml([
        FeedSource(a, "Feed A"), FeedSource(b, "Feed B"), FeedSource(bad, "Broken"),
        FeedSource("http://192.168.0.10/rss", "Router"), FeedSource(WIRE.url, "Wire"),
    ])
    reply = await service.dispatch(ADMIN, "feeds import", {"file": opml})
    assert not reply.error, reply.text
    assert "Imported 2 of 5 feeds (1 already followed)." in reply.text
    assert "✗ Broken: " in reply.text
    assert "HTTP 500" in reply.text
    assert "✗ Router: refused: 192.168.0.10 is a private address" in reply.text
    channel = await service.channel(ADMIN)
    urls = {f.url for f in await storage.channel_feeds(channel.id)}
    assert {a, b, WIRE.url, OTHER.url} == urls
    export = await service.dispatch(READER, "feeds export", {})
    assert export.attachment is not None
    assert export.attachment.filename.endswith(".opml")
    exported = {s.url: s.name for s in parse_opml(export.attachment.data)}
    assert exported == {a: "Feed A", b: "Feed B", WIRE.url: "Wire", OTHER.url: "Other Times"}
    # a feed the bot polls already is added without fetching it again (wire.example
    # does not even resolve)
    third = ChannelContext("console", "third", can_manage=True)
    await service.dispatch(third, "feeds remove", {"feed": "Wire"})
    readded = await service.dispatch(third, "feeds add", {"url": WIRE.url})
    assert readded.text.startswith("Added Wire ("), readded.text
    # exported from one channel, imported into another: the same feeds
    other = ChannelContext("console", "second", can_manage=True)
    await service.dispatch(other, "feeds remove", {"feed": "Wire"})
    again = await service.dispatch(other, "feeds import", {"file": export.attachment.data})
    assert "Imported 3 of 4 feeds (1 already followed)." in again.text


async def test_malformed_opml_adds_nothing(
    service: BriefingService, storage: SqlStorage
) -> None:
    channel = await service.channel(ADMIN)
    before = await storage.channel_feeds(channel.id)
    for data, message in [
        (b"<opml><body><outline xmlUrl='x'", "not a valid OPML"),
        (b"<html><body>hello</body></html>", "not an OPML file"),
        (b"", "must not be empty|empty"),
    ]:
        reply = await service.dispatch(ADMIN, "feeds import", {"file": data})
        assert reply.error
        assert any(m in reply.text for m in message.split("|")), reply.text
    assert await storage.channel_feeds(channel.id) == before


# -- /search, /test --------------------------------------------------------------------


async def test_search_best_first_in_the_channels_feeds(
    service: BriefingService, storage: SqlStorage
) -> None:
    await seed(storage, ["Export controls on chips tightened", "Chips rally on earnings"])
    await seed(storage, ["Old export controls story"], ago=timedelta(days=5))
    reply = await service.dispatch(READER, "search", {"query": "export controls"})
    assert not reply.error
    assert not reply.ephemeral
    assert "2 best" in reply.lines[0]
    titles = [line for line in reply.lines if line[:2] in ("1.", "2.")]
    assert len(titles) == 2
    assert all("xport controls" in t for t in titles)
    recent = await service.dispatch(READER, "search", {"query": "export controls", "hours": 24})
    assert "1 best" in recent.lines[0]
    none = await service.dispatch(READER, "search", {"query": "zeppelin"})
    assert "No stored story matches 'zeppelin'" in none.text
    # a channel that removed the feed does not see its items
    await service.dispatch(ADMIN, "feeds remove", {"feed": "Wire"})
    hidden = await service.dispatch(READER, "search", {"query": "export controls"})
    assert "No stored story matches" in hidden.text


async def test_test_text_explains_matches_and_near_misses(service: BriefingService) -> None:
    reply = await service.dispatch(READER, "test", {"text": "Wang Yi met Blinken; Hunter Biden"})
    assert not reply.error
    assert "✓ Wang Yi (wang-yi): matched 'Wang Yi'" in reply.text
    assert "✓ Antony Blinken (antony-blinken)" in reply.text
    assert "✗ Joe Biden (joe-biden): 'Biden' found but not counted" in reply.text
    nothing = await service.dispatch(READER, "test", {"text": "A quiet day"})
    assert "No entry of this channel's watchlist matches" in nothing.text


async def test_test_entry_previews_recent_matches(
    service: BriefingService, storage: SqlStorage
) -> None:
    await seed(storage, ["Biden hosts Xi", "Hunter Biden testifies", "Weather"])
    reply = await service.dispatch(READER, "test", {"entry": "joe-biden"})
    assert "3 stored items checked, 1 matched, 1 mentioned but rejected" in reply.text
    assert "✓ Biden hosts Xi — 'Biden' in the title" in reply.text
    assert "✗ Hunter Biden testifies — 'Biden'" in reply.text
    both = await service.dispatch(READER, "test", {"entry": "joe-biden", "text": "x"})
    assert both.error
    neither = await service.dispatch(READER, "test", {})
    assert neither.error
    assert "Give text:" in neither.text


# -- /status, /help --------------------------------------------------------------------


async def test_status(service: BriefingService, storage: SqlStorage) -> None:
    await seed(storage, ["Wang Yi meets Blinken", "Weather"])
    other_id = await feed_id(storage, OTHER.url)
    for _ in range(3):
        await storage.record_fetch_failure(
            other_id, at=NOW - timedelta(minutes=30), next_poll_at=NOW + timedelta(hours=1),
            error="timed out after 30s",
        )
    channel = await service.channel(ADMIN)
    text = (await service.dispatch(READER, "status", {})).text
    assert "Feeds: 2 (0 ok, 1 failing, 1 not polled yet)" in text
    assert "✗ Other Times: timed out after 30s (3× in a row, last 30 min ago)" in text
    assert "Items stored today from this channel's feeds: 2" in text
    assert "Next poll: Wed 15 Nov 12:10 UTC (in 10 min)" in text
    assert "Digest: not scheduled" in text
    await service.dispatch(ADMIN, "digest schedule", {"time": "15:00"})
    await storage.set_paused(channel.id, "delivery refused: 403 Missing Access")
    text = (await service.dispatch(READER, "status", {})).text
    assert "Next digest: Wed 15 Nov 15:00 (15:00 UTC, every day)" in text
    assert "paused: delivery refused: 403 Missing Access" in text


async def test_help(service: BriefingService) -> None:
    reply = await service.dispatch(READER, "help", {})
    assert any(line.startswith("/brief") for line in reply.lines)
    detail = await service.dispatch(READER, "help", {"command": "track"})
    assert "name: the name shown in digests" in detail.text


async def test_autocomplete(service: BriefingService) -> None:
    entries = await service.autocomplete(READER, Autocomplete.ENTRY, "wang")
    assert ("Wang Yi (wang-yi)", "wang-yi") in entries
    feeds = await service.autocomplete(READER, Autocomplete.FEED, "other")
    assert [v for _, v in feeds] == [OTHER.url]
    zones = await service.autocomplete(READER, Autocomplete.TIMEZONE, "shanghai")
    assert ("Asia/Shanghai", "Asia/Shanghai") in zones


# -- audit fixes: schedules through the real scheduler, grouping, credentials, search ---


class RecordingSink:
    def __init__(self) -> None:
        self.sent: list[Any] = []

    async def send(self, channel: ChannelRecord, digest: Any, *, nonce: str) -> list[str]:
        self.sent.append(digest)
        return [f"m{len(self.sent)}"]


@pytest.fixture
async def app(clock: FakeClock) -> AsyncIterator[App]:
    """The real composition: service, outbox and the real Scheduler (APScheduler)."""
    config = Config(settings=Settings(), cfg_dir=None, watchlist=default_watchlist(),
                    feeds=[WIRE, OTHER])
    built = build_app(config, clock=clock, sinks={"console": RecordingSink()},
                      database_url="sqlite+aiosqlite:///:memory:")
    async with built:
        await built.scheduler.start(poll_now=False)
        yield built


async def test_wrapped_day_range_is_scheduled_not_a_crash(app: App) -> None:
    reply = await app.service.dispatch(
        ADMIN, "digest schedule", {"time": "08:00", "days": "fri-mon"}
    )
    assert not reply.error, reply.text
    assert "Digest scheduled at 08:00 (UTC), on fri,sat,sun,mon." in reply.text
    assert "Next digest: Fri 17 Nov 08:00" in reply.text  # NOW is Wednesday 15 Nov
    channel = await app.service.channel(ADMIN)
    assert channel.digest_days == "fri,sat,sun,mon"
    assert app.scheduler._aps.get_job(f"digest:{channel.id}") is not None
    status = await app.service.dispatch(READER, "status", {})
    assert not status.error
    assert "Next digest: Fri 17 Nov 08:00 (08:00 UTC, fri,sat,sun,mon)" in status.text


async def test_status_survives_a_stored_schedule_it_cannot_use(app: App) -> None:
    channel = await app.service.channel(ADMIN)
    # stored by an older version, unusable now
    await app.storage.set_schedule(channel.id, time="08:00", timezone="UTC", days="caturday")
    await app.scheduler.on_schedule_changed(await app.storage.channel_by_id(channel.id))
    status = await app.service.dispatch(READER, "status", {})
    assert not status.error, status.text
    assert "Digest: 08:00 UTC, caturday (not running)" in status.text
    assert app.scheduler._aps.get_job(f"digest:{channel.id}") is None
    fixed = await app.service.dispatch(ADMIN, "digest schedule", {"time": "08:00"})
    assert not fixed.error
    assert app.scheduler._aps.get_job(f"digest:{channel.id}") is not None


async def test_first_scheduled_digest_is_caught_up_after_downtime(
    app: App, clock: FakeClock
) -> None:
    await seed(app.storage, ["Wang Yi meets Blinken"], ago=timedelta(hours=3))
    reply = await app.service.dispatch(ADMIN, "digest schedule", {"time": "15:00"})
    assert "The first digest covers stories from now on" in reply.text
    channel = await app.service.channel(ADMIN)
    assert channel.last_digest_at == NOW  # the schedule's start
    # the bot is down over the first slot (15:00) and back at 16:00
    clock.set(NOW + timedelta(hours=4))
    await seed(app.storage, ["Putin visits Beijing"], ago=timedelta(hours=-1))  # 13:00
    sent = await app.scheduler.catch_up()
    assert sent == [(channel.id, NOW + timedelta(hours=3))]
    sink = app.sinks["console"]
    assert isinstance(sink, RecordingSink)
    [digest] = sink.sent
    assert digest.period_start == NOW
    assert [line.title for line in digest.lines()] == ["Putin visits Beijing"]
    assert await app.scheduler.catch_up() == []  # once
    # a channel that already had digests keeps its last digest time on a new schedule
    clock.set(NOW + timedelta(hours=5))
    await app.service.dispatch(ADMIN, "digest schedule", {"time": "09:00"})
    assert (await app.service.channel(ADMIN)).last_digest_at == NOW + timedelta(hours=3)


async def test_new_channels_take_the_configured_grouping(
    storage: SqlStorage, clock: FakeClock, server: FeedServer
) -> None:
    settings = Settings(digest={"group_by": "story"})  # type: ignore[arg-type]
    async with Fetcher(settings.http, settings.poll) as fetcher:
        service = BriefingService(
            storage=storage, clock=clock, options=service_options(settings),
            watchlist=default_watchlist(), fetcher=fetcher, parse=parse_feed_bytes,
            url_guard=make_url_guard([]),
        )
        existing = await storage.get_channel("console", "old")  # before this setting
        assert (await service.channel(ADMIN)).group_by == "story"
        assert (await storage.channel_by_id(existing.id)).group_by == "entry"
        old_ctx = ChannelContext("console", "old", user="ann", can_manage=True)
        assert (await service.channel(old_ctx)).group_by == "entry"  # not overridden
        # a channel's own choice is kept afterwards
        await service.dispatch(ADMIN, "digest group", {"by": "entry"})
        assert (await service.channel(ADMIN)).group_by == "entry"


async def test_digest_group_by_story_is_one_ranked_list(
    service: BriefingService, storage: SqlStorage
) -> None:
    await seed(storage, ["Wang Yi meets Blinken in Washington"], ago=timedelta(hours=1))
    await seed(storage, ["Wang Yi meets Blinken in Washington"], feed=OTHER,
               ago=timedelta(hours=1))
    await seed(storage, ["Putin visits Beijing", "Taiwan holds drills"], ago=timedelta(hours=2))
    denied = await service.dispatch(READER, "digest group", {"by": "story"})
    assert denied.error
    by_entry = await service.dispatch(READER, "brief", {})
    assert by_entry.digest is not None
    assert len(by_entry.digest.groups) > 1
    reply = await service.dispatch(ADMIN, "digest group", {"by": "story"})
    assert not reply.error, reply.text
    assert "grouped by story" in reply.text
    brief = await service.dispatch(READER, "brief", {})
    digest = brief.digest
    assert digest is not None
    assert digest.group_by == "story"
    [group] = digest.groups
    assert group.label is None
    titles = [line.title for line in group.stories]
    assert sorted(titles) == sorted(
        ["Wang Yi meets Blinken in Washington", "Putin visits Beijing", "Taiwan holds drills"]
    )
    assert titles[0] == "Wang Yi meets Blinken in Washington"  # two outlets rank first
    assert {t.entry_id for t in group.stories[0].tags} >= {"wang-yi", "antony-blinken"}
    bad = await service.dispatch(ADMIN, "digest group", {"by": "outlet"})
    assert bad.error
    assert "by must be one of: entry, story" in bad.text


@pytest.mark.parametrize(
    "url",
    ["https://user:s3cret@feeds.example/rss", "http://token@feeds.example/rss",
     "https://:s3cret@feeds.example/rss"],
)
async def test_feed_urls_with_credentials_are_refused(
    service: BriefingService, storage: SqlStorage, url: str
) -> None:
    channel = await service.channel(ADMIN)
    before = await storage.channel_feeds(channel.id)
    reply = await service.dispatch(ADMIN, "feeds add", {"url": url})
    assert reply.error
    assert "user name or password" in reply.text
    assert "s3cret" not in reply.text
    assert await storage.channel_feeds(channel.id) == before


async def test_opml_import_refuses_feeds_with_credentials(
    service: BriefingService, storage: SqlStorage, server: FeedServer
) -> None:
    good = server.feed("/ok.xml", FEED)
    secret = good.replace("http://", "http://reader:s3cret@")
    data = export_opml([FeedSource(good, "Good"), FeedSource(secret, "Private")])
    reply = await service.dispatch(ADMIN, "feeds import", {"file": data})
    assert "Imported 1 of 2 feeds" in reply.text
    assert "✗ Private: feed URLs with a user name or password" in reply.text
    channel = await service.channel(ADMIN)
    urls = [f.url for f in await storage.channel_feeds(channel.id)]
    assert good in urls
    assert not any("s3cret" in u for u in urls)
    exported = await service.dispatch(READER, "feeds export", {})
    assert exported.attachment is not None
    assert b"s3cret" not in exported.attachment.data


async def test_search_phrases_and_the_same_time_basis_as_brief(
    service: BriefingService, storage: SqlStorage
) -> None:
    await seed(storage, ["Export controls on chips tightened"], ago=timedelta(hours=1))
    await seed(storage, ["Controls on rice export eased"], ago=timedelta(hours=1))
    # fetched an hour ago, but published a week ago (a late feed): /brief counts it as
    # recent (fetched time), so /search hours: does too
    fid = await feed_id(storage, WIRE.url)
    late = Item(guid="late", title="Export controls review published late", summary="",
                link="https://wire.example/late", canonical_link="https://wire.example/late",
                published=NOW - timedelta(days=7), feed_url=WIRE.url, source=WIRE.name)
    await storage.insert_items(fid, keys_for_batch([late]), fetched_at=NOW - timedelta(hours=1))
    words = await service.dispatch(READER, "search", {"query": "export controls"})
    assert "3 best" in words.lines[0]
    phrase = await service.dispatch(READER, "search", {"query": '"export controls"'})
    assert "2 best" in phrase.lines[0], phrase.text
    assert "Controls on rice export" not in phrase.text
    recent = await service.dispatch(READER, "search", {"query": '"export controls"',
                                                       "hours": 24})
    assert "2 best" in recent.lines[0], recent.text
    assert "published late" in recent.text
    mixed = await service.dispatch(READER, "search", {"query": '"export controls" chips'})
    assert "1 best" in mixed.lines[0]


async def test_status_counts_only_this_channels_feeds(
    service: BriefingService, storage: SqlStorage
) -> None:
    await seed(storage, ["Wang Yi meets Blinken", "Weather"])
    other_channel = await storage.get_channel("console", "elsewhere")
    private = FeedSource("https://private.example/rss", "Private Wire")
    await storage.add_feed(private, channel_id=other_channel.id)
    await seed(storage, ["A", "B", "C"], feed=private)
    await seed(storage, ["Yesterday's news"], ago=timedelta(hours=13))  # 23:00 yesterday
    text = (await service.dispatch(READER, "status", {})).text
    assert "Items stored today from this channel's feeds: 2" in text
    elsewhere = ChannelContext("console", "elsewhere", user="bob")
    text = (await service.dispatch(elsewhere, "status", {})).text
    assert "Items stored today from this channel's feeds: 5" in text


async def test_recover_interrupted_poll_matches_what_a_cancelled_cycle_stored(
    service: BriefingService, storage: SqlStorage
) -> None:
    """A poll cancelled at shutdown after storing items but before matching them (or
    before the channel hook ran): the next run's first cycle matches them."""
    fid = await feed_id(storage, WIRE.url)
    await service.dispatch(ADMIN, "track", {"kind": "topic", "name": "Cold weather",
                                            "aliases": "turns cold"})
    # the last finished cycle: default matches stored, the feed's success recorded, but
    # the channel hook (own entries, alerts) was cut short
    await seed(storage, ["Weather turns cold"], ago=timedelta(hours=1))
    await storage.record_fetch_success(
        fid, at=NOW - timedelta(hours=1), next_poll_at=NOW, etag=None, last_modified=None,
        content_hash="x",
    )
    # the cut-short cycle: items stored, no matches, no success recorded
    cut = Item(guid="cut", title="Wang Yi meets Blinken", summary="",
               link="https://wire.example/cut", canonical_link="https://wire.example/cut",
               published=NOW - timedelta(minutes=5), feed_url=WIRE.url, source=WIRE.name)
    await storage.insert_items(fid, keys_for_batch([cut]), fetched_at=NOW - timedelta(minutes=5))
    before = await service.dispatch(READER, "brief", {})
    assert before.digest is not None
    assert titles_in(before) == []
    checked = await service.recover_interrupted_poll(compile_watchlist(default_watchlist()))
    assert checked == 2  # the cut-short item, and the last finished cycle's item
    after = await service.dispatch(READER, "brief", {})
    assert sorted(titles_in(after)) == ["Wang Yi meets Blinken", "Weather turns cold"]
    again = await service.recover_interrupted_poll(compile_watchlist(default_watchlist()))
    assert again == 2  # idempotent
    assert sorted(titles_in(await service.dispatch(READER, "brief", {}))) == sorted(
        titles_in(after))
    # an item of an older cycle (before the feed's last recorded poll) is left alone
    await storage.record_fetch_success(
        fid, at=NOW, next_poll_at=NOW + timedelta(minutes=15), etag=None, last_modified=None,
        content_hash="y",
    )
    assert await service.recover_interrupted_poll(compile_watchlist(default_watchlist())) == 0
