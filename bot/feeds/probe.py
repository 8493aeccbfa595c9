"""Probing a feed URL: one fetch, then a parse in the parser pool.

:func:`probe_feed` is the one fetch + parse path: the poller uses it for every feed of a
cycle (conditionally, with the feed's validators and last body hash) and
:class:`FeedProbe` for a URL a user adds from chat (``/feeds add``, ``/feeds import``).
It decides nothing: what a result means for the feed (next poll, backoff, unchanged) is
:func:`bot.feeds.decide.decide`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from yarl import URL

from bot.core.clock import Clock
from bot.core.models import FeedSource, FetchResult
from bot.core.probe import NOT_ADDED, ProbedFeed, not_a_feed, refuse_credentials, with_scheme
from bot.core.text import plain, truncate
from bot.errors import FeedError, InputError, ParseError, UnsafeURLError
from bot.feeds.parse import ParsedFeed

#: awaited with a URL (and each redirect hop); raises to refuse it
UrlGuard = Callable[[str], Awaitable[None]]


class FeedFetcher(Protocol):
    """What probing needs of :class:`bot.feeds.fetch.Fetcher`."""

    async def fetch(
        self,
        url: str,
        *,
        etag: str | None = None,
        last_modified: str | None = None,
        url_guard: UrlGuard | None = None,
    ) -> FetchResult: ...


class FeedParser(Protocol):
    """What probing needs of :class:`bot.feeds.parse.ParserPool`."""

    async def parse(
        self,
        body: bytes,
        *,
        url: str,
        headers: dict[str, str] | None = None,
        source: str = "",
        base_url: str | None = None,
        lang: str | None = None,
        now: datetime | None = None,
    ) -> ParsedFeed: ...


def content_hash(body: bytes) -> str:
    """The hash a feed's last body is remembered by (SHA-256, hex)."""
    return hashlib.sha256(body).hexdigest()


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """One fetch of a feed and, when it sent a new document, its parse."""

    fetched: FetchResult
    #: the body's :func:`content_hash`; None when there was no body (error, 304)
    content_hash: str | None = None
    #: the document, when it was parsed (not after an error, a 304, or a body with the
    #: ``known_hash`` given to :func:`probe_feed`)
    parsed: ParsedFeed | None = None
    #: why the body is not a feed (the ParseError's text)
    parse_error: str | None = None


async def probe_feed(
    url: str,
    *,
    fetcher: FeedFetcher,
    parser: FeedParser,
    etag: str | None = None,
    last_modified: str | None = None,
    url_guard: UrlGuard | None = None,
    known_hash: str | None = None,
    source: str = "",
    lang: str | None = None,
    now: datetime | None = None,
) -> ProbeResult:
    """Fetch ``url`` (conditionally with ``etag`` / ``last_modified``; every hop checked
    by ``url_guard``) and parse the body in ``parser``'s pool, unless the fetch failed,
    the server answered 304, or the body's hash is ``known_hash`` (the same bytes as
    last time: not parsed again). Never raises for a network, HTTP or parse problem:
    they are in the result."""
    fetched = await fetcher.fetch(url, etag=etag, last_modified=last_modified, url_guard=url_guard)
    if fetched.error is not None or fetched.not_modified:
        return ProbeResult(fetched)
    body = fetched.body or b""
    digest = content_hash(body)
    if digest == known_hash:
        return ProbeResult(fetched, digest)
    try:
        parsed = await parser.parse(
            body,
            url=url,
            base_url=fetched.final_url,
            headers=fetched.headers,
            source=source,
            lang=lang,
            now=now,
        )
    except ParseError as err:
        return ProbeResult(fetched, digest, parse_error=str(err))
    return ProbeResult(fetched, digest, parsed)


class FeedProbe:
    """:class:`bot.core.probe.FeedProber` over the real fetcher and parser pool.

    ``url_guard`` is the SSRF guard for feeds added from chat: it checks the URL first
    (a refusal, or a DNS failure, is reported as such), then every redirect hop of the
    fetch."""

    def __init__(
        self,
        *,
        fetcher: FeedFetcher,
        parser: FeedParser,
        url_guard: UrlGuard,
        clock: Clock | None = None,
    ) -> None:
        self.fetcher = fetcher
        self.parser = parser
        self.url_guard = url_guard
        self.clock = clock

    async def probe(self, url: str, name: str | None = None) -> ProbedFeed:
        url = with_scheme(url.strip())
        refuse_credentials(url)
        try:
            await self.url_guard(url)
        except (FeedError, UnsafeURLError) as err:  # refused, or DNS failure and the like
            raise InputError(f"{NOT_ADDED}{err}") from None
        result = await probe_feed(
            url,
            fetcher=self.fetcher,
            parser=self.parser,
            url_guard=self.url_guard,
            source=name or "",
            now=self.clock.now() if self.clock is not None else None,
        )
        fetched = result.fetched
        if fetched.error is not None:
            raise InputError(f"{NOT_ADDED}{url} could not be fetched: {fetched.error}")
        if fetched.body is None:
            raise InputError(f"{NOT_ADDED}{url} sent no content (HTTP {fetched.status}).")
        if result.parse_error is not None or result.parsed is None:
            raise InputError(f"{NOT_ADDED}{url} is {not_a_feed(result.parse_error or '')}")
        parsed = result.parsed
        feed_url = fetched.final_url if fetched.permanent_redirect else url
        title = name or parsed.title or URL(feed_url).host or feed_url
        return ProbedFeed(
            FeedSource(url=feed_url, name=truncate(plain(title), 100)), items=len(parsed.items)
        )
