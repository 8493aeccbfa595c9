"""A loopback HTTP server standing in for the feed sites, for every test that fetches.

    from feedserver import FeedServer, Reply

    async with FeedServer() as server:
        url = server.feed("/a.xml", rss_bytes, etag='"v1"')      # 200, 304 on a match
        server.sequence("/flaky", [Reply(status=500), Reply(body=rss_bytes)])
        server.redirect("/old", "/a.xml", status=301)
        server.gzip_bomb("/bomb", decompressed_size=50_000_000)
        server.requests["/a.xml"]   # the headers of each request received

It is a real aiohttp server on 127.0.0.1 with an ephemeral port, so the real client
code (aiohttp, redirects, gzip, timeouts) runs. ``feed_server`` is the same as a pytest
fixture (``from feedserver import feed_server`` or list this module in
``pytest_plugins``).
"""

from __future__ import annotations

import asyncio
import gzip
import struct
import zlib
from collections import defaultdict
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from xml.sax.saxutils import escape

import pytest
from aiohttp import web


@dataclass
class Reply:
    """One configured response."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/rss+xml; charset=utf-8"
    etag: str | None = None
    last_modified: str | None = None
    #: answer 304 to a request whose If-None-Match / If-Modified-Since matches
    conditional: bool = True
    #: seconds to wait before sending the headers
    delay: float = 0.0
    #: gzip the body (Content-Encoding: gzip)
    gzip: bool = False
    #: send the body in this many chunks, without Content-Length (chunked)
    stream_chunks: int = 0
    #: seconds to wait between streamed chunks
    chunk_delay: float = 0.0


def _deflated_zeros(size: int) -> bytes:
    """``size`` zero bytes as raw deflate blocks ending in a full flush (byte-aligned,
    history reset: copies of it can follow one another in one stream)."""
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    return comp.compress(bytes(size)) + comp.flush(zlib.Z_FULL_FLUSH)


class FeedServer:
    def __init__(self) -> None:
        self.routes: dict[str, list[Reply]] = {}
        self.requests: dict[str, list[dict[str, str]]] = defaultdict(list)
        self._runner: web.AppRunner | None = None
        self.port = 0
        #: requests being answered now, and the most at once (for concurrency limits)
        self.active = 0
        self.max_active = 0

    # -- lifecycle -----------------------------------------------------------------
    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("GET", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FeedServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # -- configuring routes --------------------------------------------------------
    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def sequence(self, path: str, replies: Sequence[Reply]) -> str:
        """Answer ``path`` with these replies in turn; the last one repeats."""
        if not replies:
            raise ValueError("at least one reply")
        self.routes[path] = list(replies)
        return self.url(path)

    def reply(self, path: str, reply: Reply) -> str:
        return self.sequence(path, [reply])

    def feed(
        self,
        path: str,
        body: bytes,
        *,
        etag: str | None = None,
        last_modified: str | None = None,
        content_type: str = "application/rss+xml; charset=utf-8",
        gzip: bool = False,
        headers: dict[str, str] | None = None,
    ) -> str:
        """Serve ``body`` with 200 (and 304 to a matching conditional request)."""
        return self.reply(
            path,
            Reply(
                body=body,
                etag=etag,
                last_modified=last_modified,
                content_type=content_type,
                gzip=gzip,
                headers=dict(headers or {}),
            ),
        )

    def status(
        self, path: str, status: int, *, headers: dict[str, str] | None = None, body: bytes = b""
    ) -> str:
        return self.reply(
            path,
            Reply(status=status, body=body, headers=dict(headers or {}), content_type="text/plain"),
        )

    def redirect(self, path: str, to: str, *, status: int = 302) -> str:
        location = to if "://" in to else self.url(to)
        return self.reply(
            path, Reply(status=status, headers={"Location": location}, content_type="text/plain")
        )

    def slow(self, path: str, body: bytes, delay: float) -> str:
        return self.reply(path, Reply(body=body, delay=delay))

    def oversized(self, path: str, size: int, *, content_length: bool = True) -> str:
        """A body of ``size`` bytes; without Content-Length it is streamed (chunked)."""
        body = b"<!-- " + b"x" * max(0, size - 9) + b" -->"
        return self.reply(path, Reply(body=body, stream_chunks=0 if content_length else 16))

    def gzip_bomb(self, path: str, *, decompressed_size: int) -> str:
        """A small gzip body that inflates to ``decompressed_size`` bytes of zeros.

        Built from one deflate block of 1 MB of zeros, repeated (a full flush makes each
        copy independent of the data before it), so it costs no 200 MB compression."""
        chunk = 1_000_000
        whole, rest = divmod(decompressed_size, chunk)
        crc = 0
        zeros = bytes(chunk)
        for _ in range(whole):
            crc = zlib.crc32(zeros, crc)
        crc = zlib.crc32(bytes(rest), crc)
        body = b"".join(
            [
                b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff",  # gzip header, no name or time
                _deflated_zeros(chunk) * whole,
                _deflated_zeros(rest) if rest else b"",
                zlib.compressobj(9, zlib.DEFLATED, -15).flush(),  # the final, empty block
                struct.pack("<II", crc, decompressed_size & 0xFFFFFFFF),  # CRC-32, size
            ]
        )
        return self.reply(
            path,
            Reply(body=body, headers={"Content-Encoding": "gzip"}, content_type="application/xml"),
        )

    # -- serving -------------------------------------------------------------------
    def _next_reply(self, path: str) -> Reply | None:
        replies = self.routes.get(path)
        if not replies:
            return None
        return replies.pop(0) if len(replies) > 1 else replies[0]

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        try:
            return await self._serve(request)
        finally:
            self.active -= 1

    async def _serve(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        if request.query_string:
            full = f"{path}?{request.query_string}"
            if full in self.routes:
                path = full
        self.requests[path].append(dict(request.headers))
        reply = self._next_reply(path)
        if reply is None:
            return web.Response(status=404, text="not found")
        if reply.delay:
            await asyncio.sleep(reply.delay)
        headers = dict(reply.headers)
        if reply.etag:
            headers["ETag"] = reply.etag
        if reply.last_modified:
            headers["Last-Modified"] = reply.last_modified
        if reply.status == 200 and reply.conditional and self._matches(request, reply):
            return web.Response(status=304, headers=headers)
        body = reply.body
        if reply.gzip:
            body = gzip.compress(body)
            headers["Content-Encoding"] = "gzip"
        if reply.stream_chunks:
            resp = web.StreamResponse(status=reply.status, headers=headers)
            resp.content_type = reply.content_type.split(";")[0]
            resp.enable_chunked_encoding()
            await resp.prepare(request)
            chunks = _split(body, reply.stream_chunks)
            for chunk in chunks:
                await resp.write(chunk)
                if reply.chunk_delay:
                    await asyncio.sleep(reply.chunk_delay)
            await resp.write_eof()
            return resp
        headers["Content-Type"] = reply.content_type
        return web.Response(status=reply.status, body=body, headers=headers)

    @staticmethod
    def _matches(request: web.Request, reply: Reply) -> bool:
        inm = request.headers.get("If-None-Match")
        if inm is not None and reply.etag is not None:
            return reply.etag in [t.strip() for t in inm.split(",")] or inm.strip() == "*"
        ims = request.headers.get("If-Modified-Since")
        return ims is not None and reply.last_modified is not None and ims == reply.last_modified


def rss(
    items: Sequence[dict[str, str]],
    *,
    title: str = "Test Wire",
    link: str = "https://wire.example/",
    language: str | None = "en",
    encoding: str = "utf-8",
) -> bytes:
    """An RSS 2.0 document. Each item dict may have title, link, guid, description,
    pubDate (RFC 822); values are XML-escaped (so HTML in a description arrives as
    escaped text, as in real feeds)."""
    out = [
        f'<?xml version="1.0" encoding="{encoding}"?>',
        '<rss version="2.0"><channel>',
        f"<title>{escape(title)}</title><link>{escape(link)}</link>",
    ]
    if language:
        out.append(f"<language>{language}</language>")
    for it in items:
        out.append("<item>")
        for tag in ("title", "link", "guid", "description", "pubDate"):
            if tag in it:
                attr = ' isPermaLink="false"' if tag == "guid" else ""
                out.append(f"<{tag}{attr}>{escape(it[tag])}</{tag}>")
        out.append("</item>")
    out.append("</channel></rss>")
    return "\n".join(out).encode(encoding)


def atom(
    entries: Sequence[dict[str, str]],
    *,
    title: str = "Test Atom",
    feed_id: str = "urn:uuid:60a76c80-d399-11d9-b93c-0003939e0af6",
) -> bytes:
    """An Atom 1.0 document. Each entry dict may have id, title, link, summary,
    content, updated, published (RFC 3339)."""
    out = [
        '<?xml version="1.0" encoding="utf-8"?>',
        '<feed xmlns="http://www.w3.org/2005/Atom">',
        f"<title>{escape(title)}</title><id>{feed_id}</id>",
        "<updated>2023-11-01T00:00:00Z</updated>",
    ]
    for e in entries:
        out.append("<entry>")
        for tag in ("id", "title", "updated", "published"):
            if tag in e:
                out.append(f"<{tag}>{escape(e[tag])}</{tag}>")
        if "link" in e:
            out.append(f'<link rel="alternate" href="{escape(e["link"], {chr(34): "&quot;"})}"/>')
        if "summary" in e:
            out.append(f'<summary type="html">{escape(e["summary"])}</summary>')
        if "content" in e:
            out.append(f'<content type="html">{escape(e["content"])}</content>')
        out.append("</entry>")
    out.append("</feed>")
    return "\n".join(out).encode()


def _split(body: bytes, n: int) -> list[bytes]:
    size = max(1, -(-len(body) // n))
    return [body[i : i + size] for i in range(0, len(body), size)]


@pytest.fixture
async def feed_server() -> AsyncIterator[FeedServer]:
    async with FeedServer() as server:
        yield server
