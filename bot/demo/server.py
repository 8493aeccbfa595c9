"""A loopback HTTP server for the bundled sample feeds (``bot/demo/feeds``).

It listens on 127.0.0.1 on an ephemeral port and answers like a well-behaved feed
site: the right Content-Type, an ETag, and 304 to a matching conditional request.

The samples are dated October and November 2023. ``DemoServer(now=...)`` serves them
moved in time so that the latest item is an hour old (every date shifted by the same
amount), so that windows that go by publication time (``/brief``, digests) find them.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path
from types import TracebackType

from aiohttp import web

from bot.core.models import FeedSource

FEEDS_DIR = Path(__file__).parent / "feeds"

_CONTENT_TYPES = {
    ".xml": "application/rss+xml",
    ".atom": "application/atom+xml",
    ".rdf": "application/rdf+xml",
}


@dataclass(frozen=True, slots=True)
class DemoFeed:
    file: str
    name: str
    lang: str


#: The sample outlets (all fictional): RSS 2.0, Atom and RSS 1.0 (RDF), one in Chinese,
#: one an aggregator re-linking other outlets' stories with tracking parameters, one
#: full of near misses.
DEMO_FEEDS = (
    DemoFeed("harbor-wire.xml", "Harbor Wire", "en"),
    DemoFeed("capital-ledger.atom", "Capital Ledger", "en"),
    DemoFeed("pacific-monitor.rdf", "Pacific Monitor", "en"),
    DemoFeed("east-shore-times.xml", "东岸时报 East Shore Times", "zh"),
    DemoFeed("morning-dispatch.xml", "The Morning Dispatch", "en"),
    DemoFeed("newsroom-digest.atom", "Newsroom Digest", "en"),
    DemoFeed("metro-weekly.xml", "Metro Weekly", "en"),
)

#: Served too, but not among the default subscriptions: for trying ``/feeds add``.
EXTRA_FEEDS = (DemoFeed("lantern-review.xml", "Lantern Review", "en"),)


_RFC822 = re.compile(rb"(<pubDate>)([^<]+)(</pubDate>)")
_ISO = re.compile(rb"(<(?:updated|published|dc:date)>)([^<]+)(</(?:updated|published|dc:date)>)")


def _dates(body: bytes) -> list[datetime]:
    found = [parsedate_to_datetime(m.group(2).decode().strip()) for m in _RFC822.finditer(body)]
    found.extend(datetime.fromisoformat(m.group(2).decode().strip()) for m in _ISO.finditer(body))
    return found


def shift_dates(body: bytes, by: timedelta) -> bytes:
    """Every item and feed date of an RSS/Atom/RDF document moved by ``by``."""
    if not by:
        return body

    def rfc(m: re.Match[bytes]) -> bytes:
        moved = parsedate_to_datetime(m.group(2).decode().strip()) + by
        return m.group(1) + format_datetime(moved).encode() + m.group(3)

    def iso(m: re.Match[bytes]) -> bytes:
        moved = datetime.fromisoformat(m.group(2).decode().strip()) + by
        return m.group(1) + moved.isoformat().encode() + m.group(3)

    return _ISO.sub(iso, _RFC822.sub(rfc, body))


def latest_sample(directory: Path = FEEDS_DIR) -> datetime:
    """The latest date in the bundled sample feeds."""
    return max(
        d.astimezone(UTC)
        for feed in (*DEMO_FEEDS, *EXTRA_FEEDS)
        for d in _dates((directory / feed.file).read_bytes())
    )


def sample_shift(now: datetime, directory: Path = FEEDS_DIR) -> timedelta:
    """How far to move the samples so that the latest is an hour before ``now`` (in
    whole minutes)."""
    by = now - timedelta(hours=1) - latest_sample(directory)
    return timedelta(minutes=by // timedelta(minutes=1))


class DemoServer:
    """``async with DemoServer() as server:`` then ``server.sources()``. With ``now``,
    the samples are served moved in time (the latest an hour before ``now``)."""

    def __init__(
        self,
        feeds: tuple[DemoFeed, ...] = DEMO_FEEDS,
        *,
        directory: Path = FEEDS_DIR,
        extra: tuple[DemoFeed, ...] = EXTRA_FEEDS,
        port: int = 0,
        now: datetime | None = None,
    ) -> None:
        self.feeds = feeds
        self.extra = extra
        self.port = port
        self.shift = sample_shift(now, directory) if now is not None else timedelta(0)
        self._bodies: dict[str, tuple[bytes, str, str]] = {}
        for feed in (*feeds, *extra):
            body = shift_dates((directory / feed.file).read_bytes(), self.shift)
            etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
            ctype = _CONTENT_TYPES.get(Path(feed.file).suffix, "application/xml")
            self._bodies[feed.file] = (body, etag, f"{ctype}; charset=utf-8")
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/feeds/{file}", self._serve)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        port = self._runner.addresses[0][1]
        self.base_url = f"http://127.0.0.1:{port}"

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> DemoServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def url(self, feed: DemoFeed) -> str:
        return f"{self.base_url}/feeds/{feed.file}"

    def sources(self) -> list[FeedSource]:
        return [FeedSource(url=self.url(f), name=f.name, lang=f.lang) for f in self.feeds]

    async def _serve(self, request: web.Request) -> web.Response:
        entry = self._bodies.get(request.match_info["file"])
        if entry is None:
            return web.Response(status=404, text="no such demo feed")
        body, etag, ctype = entry
        if request.headers.get("If-None-Match") == etag:
            return web.Response(status=304, headers={"ETag": etag})
        return web.Response(body=body, headers={"ETag": etag, "Content-Type": ctype})
