"""Feed bytes -> :class:`ParsedFeed` of :class:`~bot.core.models.Item`, with feedparser.

feedparser is only ever handed the response body wrapped in a byte stream, with the
response headers. Never a ``str`` (it would fetch a URL with blocking urllib or open a
local file) and never raw ``bytes`` either: feedparser tries ``open(bytes)`` first, so
a body such as ``b"/etc/passwd"`` would be read from the local disk.

``parse_feed_bytes`` is synchronous and CPU-bound (feedparser holds the GIL).
:class:`ParserPool` runs it in a small process pool so the event loop keeps answering
chat commands during a large poll. There is no process-wide pool: the composition root
(``bot.app``) makes one and hands it to whatever parses (the poller, the feed probe).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import hashlib
import io
import logging
import multiprocessing
import os
import re
import signal
import threading
import xml.sax
from collections.abc import Iterator
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal, Protocol
from urllib.parse import urljoin, urlsplit

import feedparser

from bot.core.cycle import ItemRow
from bot.core.links import canonical_link
from bot.core.models import Item, Match
from bot.core.text import plain
from bot.errors import ParseError
from bot.feeds.dedupe import keys_for_batch

if TYPE_CHECKING:
    from bot.core.watchlist import Watchlist

log = logging.getLogger(__name__)

#: Dates before this are not news (feeds default to the epoch or year 1 on bad dates).
EARLIEST = datetime(1990, 1, 1, tzinfo=UTC)
#: How far into the future a published date may be (clock skew, time zones) before it
#: is treated as wrong and dropped.
FUTURE_SLACK = timedelta(days=2)
MAX_TITLE = 1_000
MAX_SUMMARY = 20_000
MAX_GUID = 1_000
MAX_FEED_TITLE = 300

_HTML_START = re.compile(
    rb"^\s*(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html[\s>]|head[\s>])", re.I | re.S
)


@dataclass(frozen=True, slots=True)
class ParsedFeed:
    title: str | None
    items: list[Item] = field(default_factory=list)
    #: why feedparser called the document ill-formed, when it still yielded a feed
    bozo_warning: str | None = None
    #: ``items`` as the poller stores them (dedupe keys, plain text, default matches),
    #: computed in the parser worker when the parse was asked to ``prepare`` them
    rows: list[ItemRow] | None = None


def _text(value: Any, limit: int) -> str:
    """A feedparser value as clean text (feedparser gives str, but be strict)."""
    if not isinstance(value, str):
        return ""
    return value.replace("\x00", "").strip()[:limit]


def _http_url(raw: str, base: str) -> str | None:
    """``raw`` made absolute against ``base``; None unless http(s)."""
    if not raw:
        return None
    try:
        url = urljoin(base, raw.strip())
        parts = urlsplit(url)
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            return None
    except ValueError:
        return None
    return url


def _date(entry: Any, now: datetime) -> datetime | None:
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        value = dict.get(entry, key)  # not entry.get: it maps updated to published
        if value is None:
            continue
        try:
            year, month, day, hour, minute, second = tuple(value)[:6]
            when = datetime(year, month, day, hour, minute, min(second, 59), tzinfo=UTC)
        except (TypeError, ValueError, OverflowError):
            continue
        if EARLIEST <= when <= now + FUTURE_SLACK:
            return when
    return None


def _summary(entry: Any) -> str:
    summary = _text(entry.get("summary"), MAX_SUMMARY)
    if summary:
        return summary
    content = entry.get("content")
    if isinstance(content, list):
        for part in content:
            if isinstance(part, dict):
                value = _text(part.get("value"), MAX_SUMMARY)
                if value:
                    return value
    return ""


def _warning(exc: Any) -> str | None:
    if exc is None:
        return None
    if isinstance(exc, feedparser.NonXMLContentType):
        return None  # servers label feeds text/html all the time; it says nothing
    if isinstance(exc, xml.sax.SAXParseException):
        return f"ill-formed XML at line {exc.getLineNumber()}: {exc.getMessage()}"
    text = str(exc).strip() or type(exc).__name__
    return text[:300]


def _lang(value: Any) -> str | None:
    lang = _text(value, 16).lower().replace("_", "-")
    return lang or None


def _item(
    entry: Any, *, feed_url: str, base: str, source: str, lang: str | None, now: datetime
) -> Item:
    title = _text(entry.get("title"), MAX_TITLE)
    summary = _summary(entry)
    link = _http_url(_text(entry.get("link"), 4_000), base)
    guid = _text(entry.get("id"), MAX_GUID) or link
    if not guid:
        digest = hashlib.sha1(f"{title}\n{summary}".encode(), usedforsecurity=False)
        guid = "sha1:" + digest.hexdigest()
    return Item(
        guid=guid,
        title=title,
        summary=summary,
        link=link,
        canonical_link=canonical_link(link),
        published=_date(entry, now),
        feed_url=feed_url,
        source=source,
        lang=lang or _lang(entry.get("language")),
    )


def parse_feed_bytes(
    body: bytes,
    *,
    url: str,
    headers: dict[str, str] | None = None,
    source: str = "",
    base_url: str | None = None,
    lang: str | None = None,
    now: datetime | None = None,
) -> ParsedFeed:
    """Parse a fetched feed document.

    ``url`` is the feed's identity (stored on each item); ``base_url`` (default ``url``)
    is where it was actually fetched from, for resolving relative links; ``headers``
    are the response headers (lower-case names), used for the charset. ``source`` is
    the outlet's display name, ``lang`` the configured language.

    Raises :class:`ParseError` when the document is not a feed; a feed feedparser calls
    ill-formed ("bozo") is accepted when it still yields a feed, with the warning kept.
    Never raises anything else."""
    if not isinstance(body, bytes | bytearray | memoryview):
        raise ParseError("internal error: feed body must be bytes", url=url)
    body = bytes(body)
    if not body.strip():
        raise ParseError("the server sent an empty document, not a feed", url=url)
    now = now or datetime.now(UTC)
    base = base_url or url
    # No content-location header: with one, feedparser resolves the URIs of every start
    # tag against it (a fifth of the parse) and makes a relative guid absolute (changing
    # its dedupe key). Only the item links need a base: they are resolved below.
    response_headers = {
        k.lower(): v
        for k, v in (headers or {}).items()
        if isinstance(v, str) and k.lower() != "content-location"
    }
    try:
        # Relative links inside HTML summaries are not resolved (nothing uses them).
        parsed = feedparser.parse(
            io.BytesIO(body),
            response_headers=response_headers,
            resolve_relative_uris=False,
            sanitize_html=True,
        )
    except Exception as err:  # a bug in feedparser on hostile input: still just a bad feed
        log.warning("feedparser failed on %s: %r", url, err)
        raise ParseError(f"the feed could not be parsed ({type(err).__name__})", url=url) from None

    entries = parsed.get("entries") or []
    version = parsed.get("version") or ""
    warning = _warning(parsed.get("bozo_exception")) if parsed.get("bozo") else None
    feed_meta = parsed.get("feed") or {}
    # A document with no entries is a feed if feedparser recognised the format, and,
    # when it is ill-formed, still recovered the feed's own title or link from it.
    recovered = bool(feed_meta.get("title") or feed_meta.get("link"))
    if not entries and (not version or (warning and not recovered)):
        if _HTML_START.match(body[:2048]):
            raise ParseError(
                "not a feed: the address returned a web page (HTML); use the site's "
                "RSS or Atom feed URL",
                url=url,
            )
        reason = warning or "no RSS, Atom or RDF structure found"
        raise ParseError(f"not a feed: {reason}", url=url)

    feed_lang = lang or _lang(feed_meta.get("language"))
    title = _text(feed_meta.get("title"), MAX_FEED_TITLE) or None
    shown_source = source or title or (urlsplit(url).hostname or url)
    items = []
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        items.append(
            _item(entry, feed_url=url, base=base, source=shown_source, lang=feed_lang, now=now)
        )
    return ParsedFeed(title=title, items=items, bozo_warning=warning)


class _Matcher(Protocol):
    def match_plain(self, title: str, summary: str) -> Any: ...


def prepare_items(items: list[Item], matcher: _Matcher | None) -> list[ItemRow]:
    """What the poller stores of ``items`` (one document's): their dedupe keys, their
    plain title and summary, and, with a ``matcher``, their default-watchlist matches
    (None for an item the matcher raised on: the poller matches it again and reports
    it)."""
    rows = []
    for item, keys in keys_for_batch(items):
        title, summary = plain(item.title), plain(item.summary)
        found: tuple[Match, ...] | None = None
        if matcher is not None:
            try:
                found = tuple(matcher.match_plain(title, summary))
            except Exception:
                found = None
        rows.append(ItemRow(item, keys, title, summary, found))
    return rows


#: the default watchlist compiled in this parser worker (see :class:`ParserPool`)
_worker_matcher: _Matcher | None = None


def _init_worker(watchlist: Watchlist | None) -> None:
    """A parser worker's initializer: compile the default watchlist once."""
    global _worker_matcher  # noqa: PLW0603 (one matcher per worker process)
    if watchlist is None:
        _worker_matcher = None
        return
    from bot.core.matching import compile_watchlist

    _worker_matcher = compile_watchlist(watchlist)


# -- off the event loop ------------------------------------------------------------------

PoolKind = Literal["process", "thread"]


#: How long one parse may take before its worker is presumed stuck. The largest feeds
#: the fetcher accepts parse in a few seconds; a parse that runs longer is killed.
PARSE_TIMEOUT = 60.0


def ignore_sigint() -> None:
    """Parser workers ignore Ctrl-C: the terminal sends SIGINT to the whole process
    group, and only the main process decides how to stop (it shuts the pool down)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _init_process_worker(watchlist: Watchlist | None) -> None:
    """A parser process's initializer: Ctrl-C ignored, the default watchlist compiled."""
    ignore_sigint()
    _init_worker(watchlist)


@contextlib.contextmanager
def _sigint_ignored_while_spawning() -> Iterator[None]:
    """SIGINT ignored in this process for the moment a submit may start a worker: a
    spawned worker inherits the ignored disposition from its first instruction, so a
    Ctrl-C while it is still importing does not print a traceback either (the
    initializer covers it from then on). Only the main thread can set handlers."""
    previous = signal.getsignal(signal.SIGINT)
    if previous is None or threading.current_thread() is not threading.main_thread():
        yield
        return
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


class ParserPool:
    """Runs :func:`parse_feed_bytes` off the event loop.

    ``kind="process"`` (the default) uses a small spawn-based process pool: feedparser
    holds the GIL, and a thread would stall the event loop for the whole parse of a
    large feed (measured in ``tests/test_poll.py``). Bytes go in, picklable
    :class:`ParsedFeed` comes back. If the platform cannot start processes the pool
    falls back to threads.

    The pool never stops polling:

    - workers live as long as the pool (no ``max_tasks_per_child``: on Python 3.11 a
      worker that retires mid-burst is not replaced, CPython gh-115634, and the pool
      hangs with work queued and no live worker);
    - every parse has a time limit (``timeout``, counted once the pool has room for it:
      see :meth:`run`); a parse over it is a
      :class:`ParseError` for that feed, and the pool's workers are killed and the pool
      rebuilt, since a stuck worker cannot be interrupted;
    - a dead pool (a worker killed by the OS, out of memory on a huge feed) is rebuilt;
      the parses it took down with it are tried once more on the new pool, so only a
      feed that breaks the pool twice is reported as crashing the parser.
    """

    def __init__(
        self,
        *,
        kind: PoolKind = "process",
        workers: int | None = None,
        timeout: float = PARSE_TIMEOUT,
        watchlist: Watchlist | None = None,
    ) -> None:
        self.kind = kind
        self.workers = workers or max(1, min(2, os.cpu_count() or 1))
        self.timeout = timeout
        #: the default watchlist each worker compiles once (its initializer): a parse
        #: asked to ``prepare`` its items then matches them in the worker too
        self.watchlist = watchlist
        self._executor: concurrent.futures.Executor | None = None
        self._worked = False  # a parse has come back from this pool's workers
        self._slots: tuple[asyncio.AbstractEventLoop, asyncio.Semaphore] | None = None
        #: pools built so far (1 after the first parse; more after a rebuild)
        self.generation = 0

    def _make(self) -> concurrent.futures.Executor:
        self.generation += 1
        if self.kind == "process":
            try:
                return concurrent.futures.ProcessPoolExecutor(
                    max_workers=self.workers,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=_init_process_worker,
                    initargs=(self.watchlist,),
                )
            except (OSError, ImportError, NotImplementedError) as err:
                log.warning("cannot start parser processes (%s); parsing in threads", err)
                self.kind = "thread"
        return concurrent.futures.ThreadPoolExecutor(
            max_workers=self.workers,
            thread_name_prefix="feedparse",
            initializer=_init_worker,
            initargs=(self.watchlist,),
        )

    def set_watchlist(self, watchlist: Watchlist | None) -> None:
        """Match prepared items against ``watchlist`` from now on. The workers compiled
        the old one at start-up, so a different watchlist retires the pool (parses
        running on it finish) and the next parse starts a new one."""
        old = self.watchlist
        if (old is None) == (watchlist is None) and (
            old is None or watchlist is None or old.content_hash() == watchlist.content_hash()
        ):
            return
        self.watchlist = watchlist
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False)

    @property
    def executor(self) -> concurrent.futures.Executor:
        if self._executor is None:
            self._executor = self._make()
        return self._executor

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
        prepare: bool = False,
    ) -> ParsedFeed:
        """:func:`parse_feed_bytes` (same arguments) run in the pool. ``prepare``: the
        result's ``rows`` hold the items as the poller stores them (see
        :func:`prepare_items`; matched when the pool has a ``watchlist``)."""
        return await self.run(ParseCall(body, url, headers, source, base_url, lang, now, prepare))

    async def run(self, call: ParseCall) -> ParsedFeed:
        """Run one parse call in the pool (the hook a subclass overrides to parse
        elsewhere, e.g. on the loop thread for a benchmark).

        At most two parses per worker are in the pool at once; the others wait here,
        so a parse's time limit is spent parsing (or behind one other parse), never in
        a queue of hundreds: on a loaded machine a big cycle's queued parses used to
        time out one after another, each restarting the workers."""
        async with self._room():
            return await self._run(call, retried=False)

    def _room(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        if self._slots is None or self._slots[0] is not loop:
            self._slots = (loop, asyncio.Semaphore(2 * self.workers))
        return self._slots[1]

    async def _run(self, call: ParseCall, *, retried: bool) -> ParsedFeed:
        loop = asyncio.get_running_loop()
        executor = self.executor
        try:
            with _sigint_ignored_while_spawning():
                future = loop.run_in_executor(executor, call)
            parsed = await asyncio.wait_for(future, self.timeout)
        except TimeoutError:
            # a timeout's traceback shows only asyncio's wait_for
            log.error(  # noqa: TRY400
                "parsing %s took over %gs; restarting the feed parser workers",
                call.url,
                self.timeout,
            )
            self._discard(executor, kill=True)
            raise ParseError(
                f"the feed took over {self.timeout:g}s to parse and was skipped", url=call.url
            ) from None
        except BrokenProcessPool:
            self._discard(executor)
            if not self._worked:
                # the workers could not even start (e.g. a main script without the
                # ``if __name__ == "__main__"`` guard that spawn needs): use threads
                # BrokenProcessPool's traceback shows the pool's internals, not the cause
                log.error("feed parser processes failed to start; parsing in threads")  # noqa: TRY400
                self.kind = "thread"
                return await self._run(call, retried=retried)
            if not retried:
                # the pool died under this parse, maybe because of another feed
                return await self._run(call, retried=True)
            # BrokenProcessPool's traceback shows the pool's internals, not the cause
            log.error(  # noqa: TRY400
                "a feed parser process died while parsing %s; restarting the pool", call.url
            )
            raise ParseError(
                "the feed parser crashed on this feed (too large or malformed)", url=call.url
            ) from None
        except ParseError:
            self._worked = True
            raise
        self._worked = True
        return parsed

    def _discard(self, broken: concurrent.futures.Executor, *, kill: bool = False) -> None:
        """Drop a broken or stuck pool (unless another task already replaced it).

        ``kill`` ends its worker processes at once: a worker stuck in a parse would
        otherwise hold its process (and its memory) until the parse ends, if ever."""
        if self._executor is not broken:
            return
        self._executor = None
        if kill and isinstance(broken, concurrent.futures.ProcessPoolExecutor):
            # Python 3.14 has terminate_workers(); before it the processes are only
            # reachable through the executor's own table.
            processes = getattr(broken, "_processes", None) or {}
            for process in list(processes.values()):
                process.kill()
        broken.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        """Stop the workers (waits for running parses)."""
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)


class PreparingParser:
    """``pool``, asked to prepare the items it parses for storing (what the poller
    hands :func:`~bot.feeds.probe.probe_feed`)."""

    def __init__(self, pool: ParserPool) -> None:
        self.pool = pool

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
    ) -> ParsedFeed:
        return await self.pool.parse(
            body,
            url=url,
            headers=headers,
            source=source,
            base_url=base_url,
            lang=lang,
            now=now,
            prepare=True,
        )


@dataclass(frozen=True, slots=True)
class ParseCall:
    """A picklable call of parse_feed_bytes (a lambda cannot cross to a process)."""

    body: bytes
    url: str
    headers: dict[str, str] | None
    source: str
    base_url: str | None
    lang: str | None
    now: datetime | None
    prepare: bool = False

    def __call__(self) -> ParsedFeed:
        parsed = parse_feed_bytes(
            self.body,
            url=self.url,
            headers=self.headers,
            source=self.source,
            base_url=self.base_url,
            lang=self.lang,
            now=self.now,
        )
        if not self.prepare:
            return parsed
        return replace(parsed, rows=prepare_items(parsed.items, _worker_matcher))
