"""Probing a feed URL (bot.feeds.probe) against the loopback feed server: the one fetch
+ parse path of the poller, and the FeedProber port (bot.core.probe) the feed use cases
call before adding a feed from chat, with the SSRF guard."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime

import pytest
from feedserver import FeedServer, rss

from bot.config import HttpSettings, PollSettings
from bot.core.clock import FakeClock
from bot.core.models import FeedSource
from bot.core.probe import FeedProber, ProbedFeed, not_a_feed, refuse_credentials, with_scheme
from bot.errors import InputError
from bot.feeds.fetch import Fetcher
from bot.feeds.guard import make_url_guard
from bot.feeds.parse import ParsedFeed, ParserPool
from bot.feeds.probe import FeedProbe, content_hash, probe_feed

NOW = datetime(2023, 11, 14, 8, 0, tzinfo=UTC)
STORIES = [
    {"title": "Wang Yi meets Blinken", "link": "https://wire.example/1", "guid": "w1"},
    {"title": "Exports fell 6% in October", "link": "https://wire.example/2", "guid": "w2"},
]
FEED = rss(STORIES, title="Loopback Wire")
REFUSED_CREDENTIALS = (
    "Not added: feed URLs with a user name or password (user:password@host) are refused: "
    "everyone in the channel would see them in /feeds list and exports."
)
PUBLIC_ONLY = (
    "feeds added from chat must be on the public internet (an admin can allow a host in "
    "security.allow_hosts)"
)


class SpyPool(ParserPool):
    """The real parser pool, recording the URLs it parsed."""

    def __init__(self) -> None:
        super().__init__(kind="process", workers=1)
        self.parsed: list[str] = []

    async def parse(self, body: bytes, **kw: object) -> ParsedFeed:  # type: ignore[override]
        self.parsed.append(str(kw["url"]))
        return await super().parse(body, **kw)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def pool() -> Iterator[SpyPool]:
    p = SpyPool()
    yield p
    p.close()


@pytest.fixture
async def server() -> AsyncIterator[FeedServer]:
    async with FeedServer() as s:
        yield s


@pytest.fixture
async def fetcher() -> AsyncIterator[Fetcher]:
    async with Fetcher(HttpSettings(total_timeout=5), PollSettings()) as f:
        yield f


@pytest.fixture
def prober(server: FeedServer, fetcher: Fetcher, pool: SpyPool) -> FeedProbe:
    """The prober as the app wires it: the SSRF guard lets only the feed server's own
    host:port through."""
    pool.parsed.clear()
    guard = make_url_guard([f"127.0.0.1:{server.port}"])
    return FeedProbe(fetcher=fetcher, parser=pool, url_guard=guard, clock=FakeClock(NOW))


async def refusal(prober: FeedProber, url: str, name: str | None = None) -> str:
    with pytest.raises(InputError) as caught:
        await prober.probe(url, name)
    return str(caught.value)


# -- probe_feed: the fetch + parse path ----------------------------------------------------


async def test_probe_feed_fetches_once_and_parses_in_the_pool(
    server: FeedServer, fetcher: Fetcher, pool: SpyPool
) -> None:
    pool.parsed.clear()
    url = server.feed("/rss.xml", FEED, etag='"v1"')
    result = await probe_feed(url, fetcher=fetcher, parser=pool, source="Wire", now=NOW)
    assert result.fetched.status == 200
    assert result.content_hash == content_hash(FEED)
    assert result.parse_error is None
    assert result.parsed is not None
    assert [i.guid for i in result.parsed.items] == ["w1", "w2"]
    assert result.parsed.items[0].source == "Wire"
    assert pool.parsed == [url]
    assert len(server.requests["/rss.xml"]) == 1


async def test_probe_feed_does_not_parse_a_304_or_the_known_bytes(
    server: FeedServer, fetcher: Fetcher, pool: SpyPool
) -> None:
    pool.parsed.clear()
    url = server.feed("/rss.xml", FEED, etag='"v1"')
    not_modified = await probe_feed(url, fetcher=fetcher, parser=pool, etag='"v1"')
    assert not_modified.fetched.not_modified
    assert (not_modified.parsed, not_modified.content_hash) == (None, None)
    same = await probe_feed(url, fetcher=fetcher, parser=pool, known_hash=content_hash(FEED))
    assert (same.parsed, same.content_hash) == (None, content_hash(FEED))
    assert pool.parsed == []


async def test_probe_feed_reports_errors_instead_of_raising(
    server: FeedServer, fetcher: Fetcher, pool: SpyPool
) -> None:
    gone = await probe_feed(server.status("/gone", 404), fetcher=fetcher, parser=pool)
    assert gone.fetched.error == "HTTP 404 Not Found"
    assert gone.parsed is None
    page = server.feed("/page", b"<!doctype html><html></html>", content_type="text/html")
    html = await probe_feed(page, fetcher=fetcher, parser=pool)
    assert html.fetched.error is None
    assert html.parse_error is not None
    assert html.parse_error.startswith("not a feed: the address returned a web page (HTML)")


# -- FeedProbe: the FeedProber port --------------------------------------------------------


async def test_a_good_feed_is_named_by_its_title_and_counted(
    prober: FeedProbe, server: FeedServer, pool: SpyPool
) -> None:
    url = server.feed("/rss.xml", FEED)
    probed = await prober.probe(url)
    assert probed == ProbedFeed(FeedSource(url, "Loopback Wire"), items=2)
    assert pool.parsed == [url]  # parsed in the injected pool, not on a thread
    assert len(server.requests["/rss.xml"]) == 1
    named = await prober.probe(url, "  My Wire")
    assert named.source == FeedSource(url, "My Wire")


async def test_a_feed_without_a_title_is_named_by_its_host(
    prober: FeedProbe, server: FeedServer
) -> None:
    body = b"<?xml version='1.0'?><rss version='2.0'><channel><item><title>A</title>" + (
        b"<guid>a</guid></item></channel></rss>"
    )
    url = server.feed("/untitled.xml", body)
    assert (await prober.probe(url)).source == FeedSource(url, "127.0.0.1")


async def test_a_permanent_redirect_gives_the_new_address(
    prober: FeedProbe, server: FeedServer
) -> None:
    new = server.feed("/new.xml", FEED)
    moved = server.redirect("/old.xml", "/new.xml", status=301)
    assert (await prober.probe(moved)).source.url == new
    temporary = server.redirect("/elsewhere.xml", "/new.xml", status=302)
    assert (await prober.probe(temporary)).source.url == temporary


async def test_a_web_page_is_not_a_feed(prober: FeedProbe, server: FeedServer) -> None:
    url = server.feed(
        "/page", b"<!DOCTYPE html><html><body>hi</body></html>", content_type="text/html"
    )
    assert await refusal(prober, url) == (
        f"Not added: {url} is not a feed: the address returned a web page (HTML); use the "
        "site's RSS or Atom feed URL"
    )


async def test_text_that_is_not_a_feed_is_refused_with_the_reason(
    prober: FeedProbe, server: FeedServer
) -> None:
    url = server.feed("/junk", b"just some text, not xml", content_type="text/plain")
    message = await refusal(prober, url)
    assert message.startswith(f"Not added: {url} is not a feed: ")


async def test_a_404_could_not_be_fetched(prober: FeedProbe, server: FeedServer) -> None:
    url = server.status("/gone", 404)
    assert (
        await refusal(prober, url) == f"Not added: {url} could not be fetched: HTTP 404 Not Found"
    )


async def test_a_redirect_to_a_private_address_is_refused_before_connecting(
    prober: FeedProbe, server: FeedServer
) -> None:
    async with FeedServer() as inside:  # a service on the same machine, another port
        target = inside.feed("/admin.xml", FEED)
        url = server.redirect("/sneaky", target)
        assert await refusal(prober, url) == (
            f"Not added: {url} could not be fetched: refused: 127.0.0.1 is a loopback "
            f"address; {PUBLIC_ONLY}"
        )
        assert inside.requests == {}  # the guard refused before any connection
    private = server.redirect("/private", "http://10.0.0.7/feed.xml")
    assert await refusal(prober, private) == (
        f"Not added: {private} could not be fetched: refused: 10.0.0.7 is a private address; "
        f"{PUBLIC_ONLY}"
    )


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (
            "http://10.1.2.3/rss",
            f"Not added: refused: 10.1.2.3 is a private address; {PUBLIC_ONLY}",
        ),
        ("http://[::1]:8080/rss", f"Not added: refused: ::1 is a loopback address; {PUBLIC_ONLY}"),
        (
            "ftp://example.com/rss",
            "Not added: only http:// and https:// feed URLs are allowed (got ftp:): "
            "ftp://example.com/rss",
        ),
    ],
)
async def test_the_guard_refuses_the_url_itself(
    prober: FeedProbe, server: FeedServer, url: str, message: str
) -> None:
    assert await refusal(prober, url) == message
    assert server.requests == {}


@pytest.mark.parametrize(
    "make_url",
    [
        lambda port: f"http://user:secret@127.0.0.1:{port}/rss.xml",
        lambda port: f"http://token@127.0.0.1:{port}/rss.xml",
        lambda port: f"  https://:secret@127.0.0.1:{port}/rss.xml ",
    ],
)
async def test_a_feed_with_credentials_in_the_url_is_refused_unfetched(
    prober: FeedProbe, server: FeedServer, make_url: Callable[[int], str]
) -> None:
    server.feed("/rss.xml", FEED)
    assert await refusal(prober, make_url(server.port)) == REFUSED_CREDENTIALS
    assert server.requests == {}


# -- the pure URL rules --------------------------------------------------------------------


def test_a_bare_host_gets_https() -> None:
    assert with_scheme("wire.example/rss") == "https://wire.example/rss"
    assert with_scheme("wire.example:8080") == "https://wire.example:8080"
    assert with_scheme("http://wire.example/rss") == "http://wire.example/rss"
    assert with_scheme("not a url") == "not a url"


def test_credentials_are_refused_and_the_rest_left_to_the_guard() -> None:
    with pytest.raises(InputError, match="user name or password"):
        refuse_credentials("https://me:pw@wire.example/rss")
    refuse_credentials("https://wire.example/rss")
    refuse_credentials("http://[not a url")  # the guard says why


def test_a_parse_error_reads_as_not_a_feed() -> None:
    assert not_a_feed(" not a feed: no RSS ") == "not a feed: no RSS"
    assert not_a_feed("the server sent an empty document, not a feed") == (
        "not a readable feed: the server sent an empty document, not a feed"
    )
