"""The fetcher against a real loopback HTTP server."""

from __future__ import annotations

import asyncio
import gzip
import itertools
import random
import socket
import time
import tracemalloc
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from aiohttp.abc import AbstractResolver, ResolveResult
from feedserver import FeedServer, Reply, rss
from typing_extensions import override

from bot.config import HttpSettings, PollSettings
from bot.core.backoff import backoff_delay, next_poll_delay
from bot.errors import UnsafeURLError
from bot.feeds.fetch import Fetcher, human_bytes, parse_retry_after
from bot.feeds.guard import URLGuard

BODY = rss([{"title": "Wang Yi arrives in Washington", "link": "https://wire.example/a"}])
LM = "Wed, 25 Oct 2023 10:00:00 GMT"


@pytest.fixture
async def server() -> AsyncIterator[FeedServer]:
    async with FeedServer() as s:
        yield s


def make_fetcher(**http: object) -> Fetcher:
    poll = PollSettings(**{k[5:]: v for k, v in http.items() if k.startswith("poll_")})
    hs = HttpSettings(**{k: v for k, v in http.items() if not k.startswith("poll_")})
    return Fetcher(hs, poll)


@pytest.fixture
async def fetcher() -> AsyncIterator[Fetcher]:
    async with make_fetcher(total_timeout=5, max_bytes=200_000) as f:
        yield f


async def test_200_returns_body_validators_and_sends_user_agent(
    server: FeedServer, fetcher: Fetcher
) -> None:
    url = server.feed("/feed.xml", BODY, etag='"v1"', last_modified=LM)
    res = await fetcher.fetch(url)
    assert res.error is None
    assert res.status == 200
    assert res.body == BODY
    assert res.etag == '"v1"'
    assert res.last_modified == LM
    assert res.final_url == url
    assert res.headers["content-type"].startswith("application/rss+xml")
    sent = server.requests["/feed.xml"][0]
    assert sent["User-Agent"].startswith("Briefbot/")
    assert "If-None-Match" not in sent


async def test_304_with_etag(server: FeedServer, fetcher: Fetcher) -> None:
    url = server.feed("/feed.xml", BODY, etag='"v1"')
    res = await fetcher.fetch(url, etag='"v1"')
    assert res.not_modified
    assert res.status == 304
    assert res.body is None
    assert res.etag == '"v1"'
    assert server.requests["/feed.xml"][0]["If-None-Match"] == '"v1"'
    # a stale validator gets the new body
    res2 = await fetcher.fetch(url, etag='"v0"')
    assert not res2.not_modified
    assert res2.body == BODY


async def test_304_with_last_modified(server: FeedServer, fetcher: Fetcher) -> None:
    url = server.feed("/feed.xml", BODY, last_modified=LM)
    res = await fetcher.fetch(url, last_modified=LM)
    assert res.not_modified
    assert res.last_modified == LM
    assert server.requests["/feed.xml"][0]["If-Modified-Since"] == LM


async def test_http_error_is_a_result_not_an_exception(
    server: FeedServer, fetcher: Fetcher
) -> None:
    url = server.sequence("/flaky", [Reply(status=500), Reply(body=BODY)])
    first = await fetcher.fetch(url)
    assert first.error is not None
    assert first.error.startswith("HTTP 500")
    assert first.status == 500
    assert first.body is None
    second = await fetcher.fetch(url)
    assert second.error is None
    assert second.body == BODY


async def test_timeout(server: FeedServer) -> None:
    url = server.slow("/slow", BODY, delay=3)
    async with make_fetcher(total_timeout=0.3) as f:
        t0 = time.monotonic()
        res = await f.fetch(url)
    assert res.error == "timed out after 0.3s"
    assert time.monotonic() - t0 < 2


async def test_timeout_covers_a_slowly_streamed_body(server: FeedServer) -> None:
    url = server.reply("/drip", Reply(body=BODY, stream_chunks=20, chunk_delay=0.1))
    async with make_fetcher(total_timeout=0.5) as f:
        res = await f.fetch(url)
    assert res.error == "timed out after 0.5s"


async def test_oversized_body_with_content_length(server: FeedServer, fetcher: Fetcher) -> None:
    url = server.oversized("/big", 300_000)
    res = await fetcher.fetch(url)
    assert res.body is None
    assert res.error is not None
    assert res.error.startswith("response larger than 200 KB")


async def test_oversized_body_streamed_without_content_length(
    server: FeedServer, fetcher: Fetcher
) -> None:
    url = server.oversized("/big", 300_000, content_length=False)
    res = await fetcher.fetch(url)
    assert res.error == "response larger than 200 KB"


async def test_gzip_feed_is_decoded(server: FeedServer, fetcher: Fetcher) -> None:
    url = server.feed("/gz", BODY, gzip=True)
    res = await fetcher.fetch(url)
    assert res.error is None
    assert res.body == BODY


async def test_gzip_bomb_stops_at_the_cap_without_inflating_it(server: FeedServer) -> None:
    url = server.gzip_bomb("/bomb", decompressed_size=200_000_000)  # ~200 KB compressed
    async with make_fetcher(max_bytes=1_000_000) as f:
        tracemalloc.start()
        try:
            res = await f.fetch(url)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert res.error == "response larger than 1 MB once decompressed"
    assert peak < 20_000_000, f"peak memory {peak} bytes while reading a gzip bomb"


async def test_a_gzip_body_under_the_cap_once_decompressed_is_read_whole(
    server: FeedServer,
) -> None:
    # (also: the test server's bomb is a valid gzip stream, trailer and all)
    url = server.gzip_bomb("/small-bomb", decompressed_size=2_500_123)
    async with make_fetcher(max_bytes=3_000_000) as f:
        res = await f.fetch(url)
    assert res.error is None
    assert res.body == bytes(2_500_123)


async def test_chunked_gzip_over_the_cap_compressed_is_refused(server: FeedServer) -> None:
    """No Content-Length, and a body that stays under the cap once decompressed: only the
    count of compressed bytes received can refuse it."""
    cap = 200_000
    body = random.Random(7).randbytes(cap - 16)  # incompressible: gzip makes it larger
    assert len(gzip.compress(body)) > cap
    url = server.reply("/gz-chunked", Reply(body=body, gzip=True, stream_chunks=8))
    async with make_fetcher(max_bytes=cap) as f:
        res = await f.fetch(url)
    assert "content-length" not in {k.lower() for k in res.headers}
    assert res.error == "response larger than 200 KB"
    assert res.body is None

    # the same bytes, plain and chunked, are under the cap and accepted
    plain = server.reply("/plain-chunked", Reply(body=body, stream_chunks=8))
    async with make_fetcher(max_bytes=cap) as f:
        ok = await f.fetch(plain)
    assert ok.error is None
    assert ok.body == body


async def test_redirect_chain_records_final_url(server: FeedServer, fetcher: Fetcher) -> None:
    final = server.feed("/c.xml", BODY)
    server.redirect("/b", "/c.xml", status=301)
    start = server.redirect("/a", "/b", status=308)
    res = await fetcher.fetch(start)
    assert res.error is None
    assert res.body == BODY
    assert res.url == start
    assert res.final_url == final
    assert res.permanent_redirect


async def test_temporary_redirect_is_not_reported_as_a_move(
    server: FeedServer, fetcher: Fetcher
) -> None:
    server.feed("/c.xml", BODY)
    server.redirect("/b", "/c.xml", status=302)
    start = server.redirect("/a", "/b", status=301)
    res = await fetcher.fetch(start)
    assert res.body == BODY
    assert not res.permanent_redirect


async def test_too_many_redirects(server: FeedServer) -> None:
    for i in range(5):
        server.redirect(f"/r{i}", f"/r{i + 1}")
    server.feed("/r5", BODY)
    async with make_fetcher(max_redirects=4) as f:
        res = await f.fetch(server.url("/r0"))
        assert res.error == "too many redirects (more than 4)"
        assert "/r5" not in server.requests
    async with make_fetcher(max_redirects=5) as f:
        assert (await f.fetch(server.url("/r0"))).body == BODY


async def test_redirect_loop_ends(server: FeedServer, fetcher: Fetcher) -> None:
    url = server.redirect("/loop", "/loop")
    res = await fetcher.fetch(url)
    assert res.error == "too many redirects (more than 5)"


async def test_redirect_to_another_scheme_is_refused(server: FeedServer, fetcher: Fetcher) -> None:
    url = server.redirect("/file", "file:///etc/passwd")
    res = await fetcher.fetch(url)
    assert res.error == "not an http(s) URL: file:///etc/passwd"


async def test_url_guard_runs_for_every_hop(server: FeedServer) -> None:
    server.feed("/private.xml", BODY)
    server.redirect("/b", "/private.xml")
    start = server.redirect("/a", "/b")
    checked: list[str] = []

    async def guard(url: str) -> None:
        checked.append(url)
        if url.endswith("/private.xml"):
            raise UnsafeURLError("refused: a private address")

    async with Fetcher(HttpSettings(), PollSettings(), url_guard=guard) as f:
        res = await f.fetch(start)
    assert checked == [start, server.url("/b"), server.url("/private.xml")]
    assert res.error == "refused: a private address"
    assert "/private.xml" not in server.requests  # never fetched


async def test_retry_after_seconds_on_429(server: FeedServer, fetcher: Fetcher) -> None:
    url = server.status("/busy", 429, headers={"Retry-After": "120"})
    res = await fetcher.fetch(url)
    assert res.error is not None
    assert res.error.startswith("HTTP 429")
    assert res.retry_after == 120


async def test_retry_after_http_date_on_503(server: FeedServer, fetcher: Fetcher) -> None:
    when = datetime.now(UTC) + timedelta(minutes=10)
    url = server.status("/down", 503, headers={"Retry-After": format_datetime(when, usegmt=True)})
    res = await fetcher.fetch(url)
    assert res.retry_after is not None
    assert 590 <= res.retry_after <= 600


async def test_retry_after_ignored_on_other_statuses(server: FeedServer, fetcher: Fetcher) -> None:
    url = server.status("/gone", 500, headers={"Retry-After": "120"})
    assert (await fetcher.fetch(url)).retry_after is None


async def test_connection_refused_is_a_clear_error(fetcher: Fetcher) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    res = await fetcher.fetch(f"http://127.0.0.1:{port}/feed")
    assert res.error is not None
    assert res.error.startswith("could not connect to 127.0.0.1")
    assert res.status is None


async def test_invalid_urls(fetcher: Fetcher) -> None:
    assert (await fetcher.fetch("ftp://example.com/feed")).error == (
        "not an http(s) URL: ftp://example.com/feed"
    )
    assert (await fetcher.fetch("not a url")).error is not None


async def test_per_host_and_global_limits(server: FeedServer) -> None:
    for i in range(6):
        server.slow(f"/f{i}", BODY, delay=0.15)
    async with make_fetcher(poll_per_host=2, poll_max_concurrency=8) as f:
        results = await asyncio.gather(*(f.fetch(server.url(f"/f{i}")) for i in range(6)))
    assert all(r.body == BODY for r in results)
    assert server.max_active == 2
    async with make_fetcher(poll_per_host=4, poll_max_concurrency=3) as f:
        server.max_active = 0
        await asyncio.gather(*(f.fetch(server.url(f"/f{i}")) for i in range(6)))
    assert server.max_active == 3


def test_next_poll_delay_grows_with_jitter_and_caps() -> None:
    rng = random.Random(7)
    args = {"interval": 900.0, "base": 60.0, "max_delay": 3600.0}
    assert next_poll_delay(0, **args, rng=rng) == 900.0
    delays = [next_poll_delay(n, **args, rng=rng) for n in range(1, 9)]
    assert all(a < b for a, b in itertools.pairwise(delays[:6])), delays  # below the cap
    assert 48 <= delays[0] <= 60
    assert all(d <= 3600 for d in delays)
    # jitter: the same failure count does not always give the same delay
    assert len({round(next_poll_delay(3, **args, rng=rng), 6) for _ in range(20)}) > 10
    # never sooner than Retry-After, on failure or success
    assert next_poll_delay(1, **args, retry_after=7200, rng=rng) == 7200
    assert next_poll_delay(0, **args, retry_after=1800, rng=rng) == 1800
    assert next_poll_delay(200, **args, rng=rng) <= 3600


def test_backoff_delay_doubles_to_its_cap() -> None:
    assert backoff_delay(0, base=30, cap=3600) == 0
    assert [backoff_delay(n, base=30, cap=3600) for n in range(1, 9)] == [
        30,
        60,
        120,
        240,
        480,
        960,
        1920,
        3600,
    ]
    assert backoff_delay(10_000, base=30, cap=3600) == 3600
    rng = random.Random(3)
    jittered = [backoff_delay(4, base=30, cap=3600, jitter=0.2, rng=rng) for _ in range(50)]
    assert all(192 <= d <= 240 for d in jittered)
    assert len(set(jittered)) > 40


def test_parse_retry_after() -> None:
    now = datetime(2023, 11, 1, 12, 0, tzinfo=UTC)
    assert parse_retry_after("30") == 30
    assert parse_retry_after("Wed, 01 Nov 2023 12:05:00 GMT", now=now) == 300
    assert parse_retry_after("Wed, 01 Nov 2023 11:00:00 GMT", now=now) == 0
    assert parse_retry_after("soon") is None
    assert parse_retry_after("") is None
    assert parse_retry_after("nan") is None
    assert parse_retry_after("99999999") == 7 * 24 * 3600


def test_human_bytes() -> None:
    assert human_bytes(10_000_000) == "10 MB"
    assert human_bytes(1_500_000) == "1.5 MB"
    assert human_bytes(2048) == "2.05 KB"
    assert human_bytes(12) == "12 bytes"


# -- DNS rebinding: untrusted fetches connect only to the addresses the guard checked --


class RebindingResolver(AbstractResolver):
    """DNS at the last edge, as an attacker's name server would answer: a public address
    the first ``public`` times a name is looked up, 127.0.0.1 (where the feed server
    is) after."""

    def __init__(self, public: int = 1) -> None:
        self.public = public
        self.calls: dict[str, int] = {}

    @override
    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.calls[host] = self.calls.get(host, 0) + 1
        address = "93.184.216.34" if self.calls[host] <= self.public else "127.0.0.1"
        return [
            ResolveResult(
                hostname=host, host=address, port=port, family=socket.AF_INET, proto=0, flags=0
            )
        ]

    async def close(self) -> None:
        pass


REBIND_REFUSED = (
    "refused: rebind.example resolves to 127.0.0.1, a loopback address; feeds added from "
    "chat must be on the public internet (an admin can allow a host in security.allow_hosts)"
)


async def test_rebinding_host_is_never_connected_to(server: FeedServer, fetcher: Fetcher) -> None:
    server.feed("/feed.xml", BODY)
    dns = RebindingResolver()
    guard = URLGuard(resolver=dns)
    res = await fetcher.fetch(f"http://rebind.example:{server.port}/feed.xml", url_guard=guard)
    assert res.error == REBIND_REFUSED
    assert res.body is None
    # the check saw the public answer; the connection's own lookup got loopback: refused
    assert dns.calls == {"rebind.example": 2}
    assert "/feed.xml" not in server.requests  # the loopback server was never reached
    # a trusted (config) feed on loopback, through the same fetcher, is still fetched
    trusted = await fetcher.fetch(server.url("/feed.xml"))
    assert trusted.error is None
    assert trusted.body == BODY


async def test_rebinding_refused_with_the_guard_given_to_the_fetcher(server: FeedServer) -> None:
    server.feed("/feed.xml", BODY)
    dns = RebindingResolver()
    async with Fetcher(HttpSettings(), PollSettings(), url_guard=URLGuard(resolver=dns)) as f:
        res = await f.fetch(f"http://rebind.example:{server.port}/feed.xml")
    assert res.error == REBIND_REFUSED
    assert "/feed.xml" not in server.requests


async def test_allowlisted_host_is_fetched_by_the_untrusted_session(
    server: FeedServer, fetcher: Fetcher
) -> None:
    url = server.feed("/feed.xml", BODY)
    dns = RebindingResolver(public=0)  # answers loopback only
    guard = URLGuard([f"rebind.example:{server.port}"], resolver=dns)
    res = await fetcher.fetch(f"http://rebind.example:{server.port}/feed.xml", url_guard=guard)
    assert res.error is None
    assert res.body == BODY
    assert dns.calls == {"rebind.example": 1}  # allowed: no pre-check, the connection's
    assert len(server.requests["/feed.xml"]) == 1
    # the literal loopback address, allowed by host:port, with aiohttp's real resolver
    real = URLGuard([f"127.0.0.1:{server.port}"])
    assert (await fetcher.fetch(url, url_guard=real)).body == BODY
    # ... and a name resolved by aiohttp's default resolver, allowed the same way
    local = URLGuard([f"localhost:{server.port}"])
    res = await fetcher.fetch(f"http://localhost:{server.port}/feed.xml", url_guard=local)
    assert res.error is None
    assert res.body == BODY
    # not allowed: the pre-check refuses loopback
    refused = await fetcher.fetch(url, url_guard=URLGuard())
    assert refused.error is not None
    assert refused.error.startswith("refused: 127.0.0.1 is a loopback address")
    assert len(server.requests["/feed.xml"]) == 3


async def test_redirect_to_a_rebinding_host_is_refused(
    server: FeedServer, fetcher: Fetcher
) -> None:
    server.feed("/feed.xml", BODY)
    start = server.redirect("/hop", f"http://rebind.example:{server.port}/feed.xml")
    dns = RebindingResolver()
    guard = URLGuard([f"127.0.0.1:{server.port}"], resolver=dns)  # the first hop is allowed
    res = await fetcher.fetch(start, url_guard=guard)
    assert res.error == REBIND_REFUSED
    assert len(server.requests["/hop"]) == 1
    assert dns.calls == {"rebind.example": 2}
    assert "/feed.xml" not in server.requests


async def test_untrusted_fetches_share_the_fetchers_limits(server: FeedServer) -> None:
    for i in range(6):
        server.slow(f"/f{i}", BODY, delay=0.15)
    guard = URLGuard([f"127.0.0.1:{server.port}"])
    async with make_fetcher(poll_per_host=2, poll_max_concurrency=8) as f:
        results = await asyncio.gather(
            *(f.fetch(server.url(f"/f{i}"), url_guard=guard if i % 2 else None) for i in range(6))
        )
    assert all(r.body == BODY for r in results)
    assert server.max_active == 2
