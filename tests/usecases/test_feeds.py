"""/feeds add, remove, list, import, export."""

from __future__ import annotations

from datetime import timedelta

import pytest
from feedserver import FeedServer, rss

from bot.core.models import FeedSource
from bot.core.opml import export_opml, parse_opml
from bot.core.replies import ChannelContext
from bot.core.service import BriefingService
from bot.storage.sql import SqlStorage
from usecases.env import (
    ADMIN,
    NOW,
    OTHER,
    READER,
    WIRE,
    feed_id,
)

FEED = rss(
    [
        {
            "title": "Wang Yi lands in Washington",
            "link": "https://wire.example/a",
            "guid": "a",
            "pubDate": "Wed, 15 Nov 2023 09:00:00 GMT",
        },
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
        ADMIN, "feeds add", {"url": server.feed("/two.xml", FEED), "name": "My Wire"}
    )
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
        (
            lambda s: s.feed(
                "/page", b"<!DOCTYPE html><html><body>hi</body></html>", content_type="text/html"
            ),
            "web page (HTML)",
        ),
        (
            lambda s: s.feed("/junk", b"just some text, not xml", content_type="text/plain"),
            "not a feed",
        ),
        (lambda s: s.redirect("/sneaky", "http://10.0.0.7/feed.xml"), "private address"),
        (
            lambda s: s.redirect("/meta", "http://169.254.169.254/latest/meta-data/"),
            "cloud metadata",
        ),
        (lambda s: s.redirect("/local", f"http://localhost:{s.port}/rss.xml"), "loopback"),
        (lambda _: "http://10.1.2.3/rss", "private address"),
        (lambda _: "http://[::1]:8080/rss", "loopback"),
        (lambda _: "http://localhost/rss", "localhost resolves to"),
        (lambda s: f"http://127.0.0.1:{s.port + 1 if s.port < 65535 else 1}/rss", "loopback"),
        (lambda _: "ftp://example.com/rss", "only http:// and https://"),
        (lambda _: "file:///etc/passwd", "only http:// and https://"),
    ],
)
async def test_feeds_add_refuses_what_is_not_a_public_feed(
    service: BriefingService,
    storage: SqlStorage,
    server: FeedServer,
    setup,
    message: str,  # type: ignore[no-untyped-def]
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


async def test_feeds_list_remove_and_health(service: BriefingService, storage: SqlStorage) -> None:
    other_id = await feed_id(storage, OTHER.url)
    await storage.record_fetch_failure(
        other_id,
        at=NOW - timedelta(minutes=5),
        next_poll_at=NOW + timedelta(minutes=25),
        error="HTTP 503 Service Unavailable",
    )
    wire_id = await feed_id(storage, WIRE.url)
    await storage.record_fetch_success(
        wire_id,
        at=NOW - timedelta(minutes=3),
        next_poll_at=NOW + timedelta(minutes=12),
        etag=None,
        last_modified=None,
        content_hash=None,
    )
    listing = (await service.dispatch(READER, "feeds list", {})).text
    assert "2 feeds (1 failing):" in listing
    assert "✗ failing (1× in a row): HTTP 503 Service Unavailable" in listing
    assert (
        "✓ ok, last success Wed 15 Nov 11:57 UTC (3 min ago) · "
        "next poll Wed 15 Nov 12:12 UTC (in 12 min)"
    ) in listing
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
    assert (
        len(await storage.channel_feeds((await service.channel(ChannelContext("console", "b"))).id))
        == 2
    )


async def test_opml_import_export_round_trip(
    service: BriefingService, storage: SqlStorage, server: FeedServer
) -> None:
    a = server.feed("/a.xml", FEED)
    b = server.feed("/b.xml", FEED)
    bad = server.status("/bad.xml", 500)
    opml = export_opml(
        [
            FeedSource(a, "Feed A"),
            FeedSource(b, "Feed B"),
            FeedSource(bad, "Broken"),
            FeedSource("http://192.168.0.10/rss", "Router"),
            FeedSource(WIRE.url, "Wire"),
        ]
    )
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


async def test_malformed_opml_adds_nothing(service: BriefingService, storage: SqlStorage) -> None:
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


@pytest.mark.parametrize(
    "url",
    [
        "https://user:s3cret@feeds.example/rss",
        "http://token@feeds.example/rss",
        "https://:s3cret@feeds.example/rss",
    ],
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
