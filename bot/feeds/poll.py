"""One poll cycle: due feeds -> fetch -> parse -> dedupe -> store -> match -> record.

Every feed is polled concurrently (the :class:`~bot.feeds.fetch.Fetcher` bounds how
many at once). A feed that fails, for any reason (a network error, a bad document, a
bug), gets an error result and a recorded failure with its next retry time; the other
feeds of the cycle are not affected.

A body whose SHA-256 equals the one stored for the feed is not parsed again (servers
without ETag/Last-Modified often send the same bytes every time).

Feeds fetch and parse concurrently, but store their items one feed at a time in feed-id
order (:class:`_StoreTurns`, an ordered handoff), so a cycle stores the same copy of a
story carried by several feeds whichever finished downloading first; the other copies
become sightings of it (their outlets are credited). Items handed to ``on_new_items``
carry the sightings recorded in the same cycle.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Protocol

from bot.config import PollSettings, Settings
from bot.core.clock import Clock
from bot.core.models import Match
from bot.core.ports import FeedState, MatchedItem, Storage
from bot.errors import BriefbotError, ParseError
from bot.feeds.dedupe import keys_for_batch
from bot.feeds.fetch import Fetcher, UrlGuard, next_poll_delay
from bot.feeds.parse import ParserPool, default_pool

log = logging.getLogger(__name__)

#: New items are stored and matched this many at a time (one transaction for the items,
#: one for their matches), so that a chat command's storage call never waits long behind
#: a large feed.
STORE_BATCH = 100


class ItemMatcher(Protocol):
    """What the poller needs of a compiled watchlist."""

    def match(self, title: str, summary: str) -> Sequence[Match]:
        """The entries an item matches. ``title`` and ``summary`` are as the feed gave
        them (they may hold HTML and entities)."""
        ...


MatcherProvider = Callable[[], ItemMatcher]
#: Called once per cycle with every new item and its default-watchlist matches
#: (possibly none: a channel's own entries are matched by the callee).
NewItemsHook = Callable[[list[MatchedItem]], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class FeedPollResult:
    feed_id: int
    url: str
    name: str
    new_items: int = 0
    #: items in the fetched document (new + already stored)
    seen_items: int = 0
    #: new items that matched at least one default entry
    matched_items: int = 0
    #: new items the matcher raised on (a bug, logged; stored without matches)
    match_errors: int = 0
    not_modified: bool = False
    #: the body was byte-identical to the last one: not parsed
    unchanged: bool = False
    error: str | None = None
    next_poll_at: datetime | None = None
    final_url: str | None = None
    permanent_redirect: bool = False
    bozo_warning: str | None = None
    elapsed: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def already_stored(self) -> int:
        return self.seen_items - self.new_items


@dataclass(slots=True)
class PollReport:
    started_at: datetime
    finished_at: datetime
    results: list[FeedPollResult] = field(default_factory=list)
    #: the on_new_items hook failed (the items are stored; the error is logged)
    hook_error: str | None = None

    @property
    def new_items(self) -> int:
        return sum(r.new_items for r in self.results)

    @property
    def seen_items(self) -> int:
        return sum(r.seen_items for r in self.results)

    @property
    def already_stored(self) -> int:
        return sum(r.already_stored for r in self.results)

    @property
    def matched_items(self) -> int:
        return sum(r.matched_items for r in self.results)

    @property
    def errors(self) -> list[FeedPollResult]:
        return [r for r in self.results if r.error is not None]

    def summary(self) -> str:
        parts = [
            f"{len(self.results)} feed(s) polled",
            f"{self.new_items} new item(s)",
            f"{self.already_stored} already stored",
            f"{self.matched_items} matched",
        ]
        skipped = sum(1 for r in self.results if r.not_modified or r.unchanged)
        if skipped:
            parts.append(f"{skipped} unchanged")
        if self.errors:
            parts.append(f"{len(self.errors)} failed")
        match_errors = sum(r.match_errors for r in self.results)
        if match_errors:
            parts.append(f"{match_errors} item(s) could not be matched (see the log)")
        return "; ".join(parts)


@dataclass(slots=True)
class _Outcome:
    result: FeedPollResult
    new: list[MatchedItem] = field(default_factory=list)


class _StoreTurns:
    """An ordered handoff: the feeds of a cycle store their items one at a time, in a
    fixed order (position 0, 1, 2...), whenever each finishes fetching and parsing.

    ``async with turns.turn(i)`` waits until every earlier position is done. A feed
    that stores nothing (failed, not modified) calls :meth:`done`: its turn passes as
    soon as the previous one has, without making the feed's task wait."""

    def __init__(self, count: int) -> None:
        loop = asyncio.get_running_loop()
        self._done: list[asyncio.Future[None]] = [loop.create_future() for _ in range(count)]

    @asynccontextmanager
    async def turn(self, position: int) -> AsyncIterator[None]:
        if position > 0:
            await asyncio.shield(self._done[position - 1])
        try:
            yield
        finally:
            self._finish(position)

    def done(self, position: int) -> None:
        """Position ``position`` has nothing (more) to store."""
        if self._done[position].done():
            return
        if position == 0:
            self._finish(0)
        else:
            self._done[position - 1].add_done_callback(lambda _: self._finish(position))

    def _finish(self, position: int) -> None:
        if not self._done[position].done():
            self._done[position].set_result(None)


class Poller:
    """Runs poll cycles. ``on_new_items`` may be set after construction."""

    def __init__(
        self,
        storage: Storage,
        fetcher: Fetcher,
        matcher_provider: MatcherProvider,
        clock: Clock,
        settings: Settings | PollSettings,
        *,
        parser: ParserPool | None = None,
        on_new_items: NewItemsHook | None = None,
        chat_url_guard: UrlGuard | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.storage = storage
        self.fetcher = fetcher
        self.matcher_provider = matcher_provider
        self.clock = clock
        self.settings = settings.poll if isinstance(settings, Settings) else settings
        self.parser = parser
        self.on_new_items = on_new_items
        #: checks every fetch (and redirect) of a feed added from chat: its URL was
        #: checked when added, but DNS and redirects can change since (SSRF guard)
        self.chat_url_guard = chat_url_guard
        self._rng = rng or random.Random()
        self._lock = asyncio.Lock()
        # One feed at a time stores its items (the ordered handoff of _StoreTurns).
        # SQLite serialises every storage call (a FIFO lock): with all the feeds of a big
        # poll queued on it at once, a chat command waited behind all of them (23 s
        # measured by scripts/bench_poll.py).

    @property
    def interval(self) -> timedelta:
        return timedelta(minutes=self.settings.interval_minutes)

    def _next_success(self, now: datetime) -> datetime:
        # A little early, so that a scheduler tick a moment before the exact interval
        # still finds the feed due (else it would wait a whole extra cycle).
        slack = min(timedelta(seconds=60), self.interval / 10)
        return now + self.interval - slack

    def _next_failure(self, feed: FeedState, now: datetime, retry_after: float | None) -> datetime:
        delay = next_poll_delay(
            feed.consecutive_failures + 1,
            interval=self.interval.total_seconds(),
            base=self.settings.backoff_base_seconds,
            max_delay=self.settings.backoff_max_seconds,
            retry_after=retry_after,
            rng=self._rng,
        )
        return now + timedelta(seconds=delay)

    async def poll_once(
        self,
        now: datetime | None = None,
        *,
        only_due: bool = True,
        feed_ids: Collection[int] | None = None,
    ) -> PollReport:
        """Poll the due feeds (every active feed with ``only_due=False``; just these
        feeds, due or not, with ``feed_ids``). Cycles do not overlap: a second call waits
        for the running one."""
        async with self._lock:
            started = now or self.clock.now()
            matcher = self.matcher_provider()
            if feed_ids is not None:
                feeds = [f for f in await self.storage.feed_states() if f.id in feed_ids]
            elif only_due:
                feeds = await self.storage.due_feeds(started)
            else:
                feeds = await self.storage.feed_states()
            feeds = sorted(feeds, key=lambda f: f.id)
            turns = _StoreTurns(len(feeds))
            outcomes = await asyncio.gather(
                *(
                    self._poll_feed_safely(feed, started, matcher, turns, n)
                    for n, feed in enumerate(feeds)
                )
            )
            fresh = [m for o in outcomes for m in o.new]
            if fresh and any(o.result.already_stored for o in outcomes):
                fresh = await self._with_sightings(fresh)
            report = PollReport(
                started_at=started,
                finished_at=self.clock.now(),
                results=[o.result for o in outcomes],
            )
            if fresh and self.on_new_items is not None:
                try:
                    await self.on_new_items(fresh)
                except Exception as err:
                    log.exception("handling %d new items failed", len(fresh))
                    report.hook_error = str(err) or type(err).__name__
            log.info("poll: %s", report.summary())
            return report

    async def _with_sightings(self, fresh: list[MatchedItem]) -> list[MatchedItem]:
        """The new items with the sightings later feeds of the cycle recorded."""
        try:
            seen = await self.storage.sightings([m.stored.id for m in fresh])
        except Exception:
            log.exception("reading the sightings of %d new items failed", len(fresh))
            return fresh
        return [
            replace(m, sightings=seen[m.stored.id]) if m.stored.id in seen else m for m in fresh
        ]

    async def _poll_feed_safely(
        self, feed: FeedState, now: datetime, matcher: ItemMatcher, turns: _StoreTurns, n: int
    ) -> _Outcome:
        try:
            return await self._poll_feed(feed, now, matcher, turns, n)
        except Exception as err:
            if isinstance(err, BriefbotError):
                error = str(err)
                log.warning("polling %s failed: %s", feed.url, error)
            else:
                log.exception("polling %s failed", feed.url)
                error = f"internal error while polling this feed ({type(err).__name__})"
            turns.done(n)  # before recording the failure: the next feeds need not wait
            return await self._failed(feed, now, error)
        finally:
            turns.done(n)  # whatever happened (cancelled too), never hold the others up

    async def _failed(
        self,
        feed: FeedState,
        now: datetime,
        error: str,
        *,
        retry_after: float | None = None,
        base: FeedPollResult | None = None,
    ) -> _Outcome:
        next_at = self._next_failure(feed, now, retry_after)
        try:
            await self.storage.record_fetch_failure(
                feed.id, at=now, next_poll_at=next_at, error=error
            )
        except Exception:
            log.exception("recording the failure of %s failed", feed.url)
        base = base or FeedPollResult(feed.id, feed.url, feed.name)
        return _Outcome(replace(base, error=error, next_poll_at=next_at))

    async def _poll_feed(
        self, feed: FeedState, now: datetime, matcher: ItemMatcher, turns: _StoreTurns, n: int
    ) -> _Outcome:
        guard = self.chat_url_guard if feed.origin == "chat" else None
        res = await self.fetcher.fetch(
            feed.url, etag=feed.etag, last_modified=feed.last_modified, url_guard=guard
        )
        base = FeedPollResult(
            feed.id,
            feed.url,
            feed.name,
            final_url=res.final_url,
            permanent_redirect=res.permanent_redirect,
            elapsed=res.elapsed,
        )
        if res.error is not None:
            turns.done(n)
            return await self._failed(feed, now, res.error, retry_after=res.retry_after, base=base)

        next_at = self._next_success(now)
        if res.not_modified:
            turns.done(n)
            await self.storage.record_fetch_success(
                feed.id,
                at=now,
                next_poll_at=next_at,
                etag=res.etag or feed.etag,
                last_modified=res.last_modified or feed.last_modified,
                content_hash=feed.content_hash,
            )
            return _Outcome(replace(base, not_modified=True, next_poll_at=next_at))

        body = res.body or b""
        digest = hashlib.sha256(body).hexdigest()
        if digest == feed.content_hash:
            turns.done(n)
            await self.storage.record_fetch_success(
                feed.id,
                at=now,
                next_poll_at=next_at,
                etag=res.etag,
                last_modified=res.last_modified,
                content_hash=digest,
            )
            return _Outcome(replace(base, unchanged=True, next_poll_at=next_at))

        parser = self.parser or default_pool()
        try:
            parsed = await parser.parse(
                body,
                url=feed.url,
                base_url=res.final_url,
                headers=res.headers,
                source=feed.name,
                lang=feed.lang,
                now=now,
            )
        except ParseError as err:
            turns.done(n)
            return await self._failed(feed, now, str(err), base=base)
        keyed = keys_for_batch(parsed.items)
        fresh: list[MatchedItem] = []
        match_errors = 0
        async with turns.turn(n):
            for start in range(0, len(keyed), STORE_BATCH):
                new = await self.storage.insert_items(
                    feed.id, keyed[start : start + STORE_BATCH], fetched_at=now
                )
                batch: list[MatchedItem] = []
                for stored in new:
                    try:
                        found = tuple(matcher.match(stored.item.title, stored.item.summary))
                    except Exception:
                        # a matcher bug on one item must not lose the feed's other items:
                        # the item is stored (and can be re-matched later), the failure
                        # is logged
                        log.exception("matching item %d (%s) failed", stored.id, stored.item.link)
                        match_errors += 1
                        found = ()
                    batch.append(MatchedItem(stored, found))
                    # matching is CPU work on the loop thread: let commands in between
                    # items rather than after a whole batch (~0.4 ms an item)
                    await asyncio.sleep(0)
                matched = [(m.stored.id, m.matches) for m in batch if m.matches]
                if matched:
                    await self.storage.add_matches_bulk(matched, scope=None)
                fresh.extend(batch)
        await self.storage.record_fetch_success(
            feed.id,
            at=now,
            next_poll_at=next_at,
            etag=res.etag,
            last_modified=res.last_modified,
            content_hash=digest,
            title=parsed.title,
        )
        if parsed.bozo_warning:
            log.info("%s is ill-formed but readable: %s", feed.url, parsed.bozo_warning)
        result = replace(
            base,
            new_items=len(fresh),
            seen_items=len(parsed.items),
            matched_items=sum(1 for m in fresh if m.matches),
            match_errors=match_errors,
            next_poll_at=next_at,
            bozo_warning=parsed.bozo_warning,
        )
        return _Outcome(result, fresh)
