"""One poll cycle: due feeds -> probe (fetch, parse) -> decide -> store and match ->
record -> hand the new items to the fan-out.

For each feed, :func:`~bot.feeds.probe.probe_feed` fetches it (conditionally) and
parses a new body in the parser pool; :func:`~bot.feeds.decide.decide`, which does no
I/O, says what that means (new content, not modified, unchanged, or a failure with its
backoff); the poller then does the writes the decision asks for.

Every feed is polled concurrently (the :class:`~bot.feeds.fetch.Fetcher` bounds how
many at once). A feed that fails, for any reason (a network error, a bad document, a
bug, a storage error), gets an error result and a recorded failure with its next retry
time; the other feeds of the cycle are not affected.

A body whose SHA-256 equals the one stored for the feed is not parsed again (servers
without ETag/Last-Modified often send the same bytes every time).

Feeds fetch and parse concurrently, but queue their items for storage one feed at a time
in feed-id order (:class:`~bot.feeds.order.StoreTurns`, an ordered handoff), so a cycle
stores the same copy of a story carried by several feeds whichever finished downloading
first; the other copies become sightings of it (their outlets are credited). Items
handed to ``on_new_items`` carry the sightings recorded so far in the cycle (all of them
when the cycle's new items fit in one hand-off batch, ``HANDOFF_BATCH``).

The parser workers prepare what is stored (dedupe keys, plain text and, when the pool
compiled the default watchlist, the matches): the loop thread only moves rows into
storage, in batches across feeds (:class:`~bot.feeds.writer.BatchWriter`): one short
transaction per ``STORE_BATCH`` items with their keys, sightings and matches and the
fetch records of the feeds they complete.

Every item a cycle commits is handed to ``on_new_items`` (the alert fan-out): the
batches a feed committed before it failed too, and, when the hook itself fails, again
with the next cycle. The fan-out is idempotent (an alert goes out once per story and
channel), so handing an item twice costs only the check. Items committed by a process
that died before its hand-off are handed over by the start-up recovery (the service's
``recover_interrupted_poll``: the items of each feed's latest cycle).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Protocol

from bot.config import PollSettings, Settings
from bot.core.clock import Clock
from bot.core.cycle import CycleStorage, FetchSuccess, ItemRow
from bot.core.models import Match
from bot.core.ports import FeedState, MatchedItem
from bot.core.telemetry import NULL_TELEMETRY, PollCycle, Telemetry
from bot.errors import BriefbotError
from bot.feeds.decide import PollDecision, PollPolicy, Verdict, decide, failure
from bot.feeds.fetch import Fetcher, UrlGuard
from bot.feeds.order import StoreTurns, gather_staggered
from bot.feeds.parse import ParsedFeed, ParserPool, PreparingParser, prepare_items
from bot.feeds.probe import probe_feed
from bot.feeds.writer import LINGER, STORE_BATCH, BatchWriter

log = logging.getLogger(__name__)

#: At most this many items whose hand-off failed wait for the next cycle's (the oldest
#: are dropped beyond it, with an error logged; the start-up recovery still has them).
MAX_HANDOFF_RETRY = 10_000

#: New items go to the alert fan-out (``on_new_items``) at least this many at a time
#: (and the rest when the cycle ends).
HANDOFF_BATCH = 1_000


class ItemMatcher(Protocol):
    """What the poller needs of a compiled watchlist."""

    def match(self, title: str, summary: str) -> Sequence[Match]:
        """The entries an item matches. ``title`` and ``summary`` are as the feed gave
        them (they may hold HTML and entities)."""
        ...


MatcherProvider = Callable[[], ItemMatcher]
#: Called with the cycle's new items and their default-watchlist matches (possibly
#: none: a channel's own entries are matched by the callee), HANDOFF_BATCH or more at a
#: time, and with the rest when the cycle ends.
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
    #: the on_new_items hook failed (the items are stored, the error is logged, and they
    #: are handed to it again with the next cycle)
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


@dataclass(frozen=True, slots=True)
class _Cycle:
    """One cycle's store order and writer."""

    turns: StoreTurns
    writer: BatchWriter


class _HandOff:
    """A cycle's new items on their way to ``on_new_items``: handed over as soon as
    ``HANDOFF_BATCH`` of them are committed, and the rest when the cycle ends, so a
    large cycle does not hold every new item until it ends. Each batch carries the
    sightings recorded so far (the copies that feeds later in the cycle carry credit
    their outlets in the stored item, and so in digests, from then on)."""

    def __init__(self, poller: Poller) -> None:
        self.poller = poller
        self.pending: list[MatchedItem] = []
        #: why the last failed hand-off failed (None: none failed)
        self.error: str | None = None
        self._lock = asyncio.Lock()

    async def add(self, outcome: _Outcome) -> None:
        """A feed's committed items (its outcome keeps only the counts)."""
        self.pending.extend(outcome.new)
        outcome.new = []
        if len(self.pending) >= HANDOFF_BATCH:
            await self.flush()

    async def flush(self) -> None:
        async with self._lock:
            fresh, self.pending = self.pending, []
            if self.poller.on_new_items is None:
                return
            if fresh:
                fresh = await self.poller._with_sightings(fresh)
            error = await self.poller._hand_off(fresh)
            if error is not None:
                self.error = error


class _Progress:
    """What a feed's poll has committed so far: kept by the caller, so that a failure
    partway (a storage error in a later batch) loses none of it."""

    __slots__ = ("committed", "match_errors", "seen")

    def __init__(self) -> None:
        #: the items stored so far, with their default matches, batch by batch
        self.committed: list[MatchedItem] = []
        #: items in the parsed document
        self.seen = 0
        self.match_errors = 0


class Poller:
    """Runs poll cycles. ``parser`` is the parser pool (made by the composition root);
    ``on_new_items`` may be set after construction."""

    def __init__(
        self,
        storage: CycleStorage,
        fetcher: Fetcher,
        matcher_provider: MatcherProvider,
        clock: Clock,
        settings: Settings | PollSettings,
        *,
        parser: ParserPool,
        on_new_items: NewItemsHook | None = None,
        chat_url_guard: UrlGuard | None = None,
        rng: random.Random | None = None,
        store_batch: int = STORE_BATCH,
        store_linger: float = LINGER,
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
        #: told about every cycle (``briefbot run``: log line, metrics, health)
        self.telemetry: Telemetry = NULL_TELEMETRY
        self._lock = asyncio.Lock()
        #: new items per transaction (across feeds), and how long a batch waits to fill
        self.store_batch = store_batch
        self.store_linger = store_linger
        #: new items whose hand-off to ``on_new_items`` failed: handed again next cycle
        self._unhanded: list[MatchedItem] = []
        # One writer per cycle stores the feeds' items in batches (BatchWriter), in the
        # order of StoreTurns. SQLite serialises writes (a FIFO lock): with all the feeds
        # of a big poll queued on it at once, a chat command waited behind all of them (23
        # s measured by the old scripts/bench_poll.py; benchmarks/cycle.py measures it).

    @property
    def policy(self) -> PollPolicy:
        return PollPolicy.from_settings(self.settings)

    async def poll_once(
        self,
        now: datetime | None = None,
        *,
        only_due: bool = True,
        feed_ids: Collection[int] | None = None,
    ) -> PollReport:
        """Poll the due feeds (every active feed with ``only_due=False``; just these
        feeds, due or not, with ``feed_ids``). Cycles do not overlap: a second call waits
        for the running one.

        Every item the cycle commits is handed to ``on_new_items``, ``HANDOFF_BATCH`` or
        more at a time as feeds finish and the rest at the end of the cycle, including
        the items a feed stored before it failed (a storage error in a later batch); if
        the hook fails, they are handed again with the next hand-off. A
        process that dies in between leaves them to the start-up recovery
        (``recover_interrupted_poll``: the items of each feed's latest cycle)."""
        async with self._lock:
            began = time.monotonic()
            started = now or self.clock.now()
            matcher = self.matcher_provider()
            if feed_ids is not None:
                feeds = [f for f in await self.storage.feed_states() if f.id in feed_ids]
            elif only_due:
                feeds = await self.storage.due_feeds(started)
            else:
                feeds = await self.storage.feed_states()
            feeds = sorted(feeds, key=lambda f: f.id)
            cycle = _Cycle(
                StoreTurns(len(feeds)),
                BatchWriter(
                    self.storage,
                    fetched_at=started,
                    batch_items=self.store_batch,
                    linger=self.store_linger,
                ),
            )
            # every feed has queued its rows: write the last batch now
            cycle.turns.when_all_done(cycle.writer.flush)
            handoff = _HandOff(self)

            async def poll_and_hand(feed: FeedState, n: int) -> _Outcome:
                outcome = await self._poll_feed_safely(feed, started, matcher, cycle, n)
                await handoff.add(outcome)
                return outcome

            try:
                outcomes = await gather_staggered(
                    [poll_and_hand(feed, n) for n, feed in enumerate(feeds)]
                )
            finally:
                await cycle.writer.close()
            await handoff.flush()
            report = PollReport(
                started_at=started,
                finished_at=self.clock.now(),
                results=[o.result for o in outcomes],
                hook_error=handoff.error,
            )
            log.info("poll: %s", report.summary())
            self.telemetry.poll_cycle(PollCycle(
                feeds=len(report.results), new=report.new_items,
                matched=report.matched_items, failing=len(report.errors),
                seconds=time.monotonic() - began,
                errors=tuple(r.error for r in report.errors if r.error),
            ))  # fmt: skip
            return report

    async def _hand_off(self, fresh: list[MatchedItem]) -> str | None:
        """Hand new items (and any an earlier hand-off failed to hand over) to
        ``on_new_items``; if it fails, keep them for the next hand-off and say why."""
        assert self.on_new_items is not None
        this_batch = {m.stored.id for m in fresh}
        items = [m for m in self._unhanded if m.stored.id not in this_batch] + fresh
        self._unhanded = []
        if not items:
            return None
        try:
            await self.on_new_items(items)
        except Exception as err:
            log.exception("handling %d new items failed; trying again next cycle", len(items))
            if len(items) > MAX_HANDOFF_RETRY:
                # the traceback was logged just above
                log.error(  # noqa: TRY400
                    "%d new items not handed to the alert fan-out (too many waiting)",
                    len(items) - MAX_HANDOFF_RETRY,
                )
            self._unhanded = items[-MAX_HANDOFF_RETRY:]
            return str(err) or type(err).__name__
        return None

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
        self, feed: FeedState, now: datetime, matcher: ItemMatcher, cycle: _Cycle, n: int
    ) -> _Outcome:
        progress = _Progress()
        turns = cycle.turns
        try:
            return await self._poll_feed(feed, now, matcher, cycle, n, progress=progress)
        except Exception as err:
            if isinstance(err, BriefbotError):
                error = str(err)
                log.warning("polling %s failed: %s", feed.url, error)
            else:
                log.exception("polling %s failed", feed.url)
                error = f"internal error while polling this feed ({type(err).__name__})"
            turns.done(n)  # before recording the failure: the next feeds need not wait
            base = _stored_so_far(FeedPollResult(feed.id, feed.url, feed.name), progress)
            decision = failure(feed, error, now, self.policy, jitter=self._rng.random())
            # the batches committed before the failure still go to the fan-out
            return await self._failed(feed, now, decision, base, progress.committed)
        finally:
            turns.done(n)  # whatever happened (cancelled too), never hold the others up

    async def _failed(
        self,
        feed: FeedState,
        now: datetime,
        decision: PollDecision,
        base: FeedPollResult,
        committed: list[MatchedItem] | None = None,
    ) -> _Outcome:
        error = decision.error or "failed"
        try:
            await self.storage.record_fetch_failure(
                feed.id, at=now, next_poll_at=decision.next_poll_at, error=error
            )
        except Exception:
            log.exception("recording the failure of %s failed", feed.url)
        return _Outcome(
            replace(base, error=error, next_poll_at=decision.next_poll_at), committed or []
        )

    async def _poll_feed(
        self,
        feed: FeedState,
        now: datetime,
        matcher: ItemMatcher,
        cycle: _Cycle,
        n: int,
        *,
        progress: _Progress,
    ) -> _Outcome:
        # I/O: fetch, and parse in the pool unless the body is the one parsed last time
        probe = await probe_feed(
            feed.url,
            fetcher=self.fetcher,
            parser=PreparingParser(self.parser),
            etag=feed.etag,
            last_modified=feed.last_modified,
            url_guard=self.chat_url_guard if feed.origin == "chat" else None,
            known_hash=feed.content_hash,
            source=feed.name,
            lang=feed.lang,
            now=now,
        )
        fetched = probe.fetched
        base = FeedPollResult(
            feed.id,
            feed.url,
            feed.name,
            final_url=fetched.final_url,
            permanent_redirect=fetched.permanent_redirect,
            elapsed=fetched.elapsed,
        )
        # what it means (pure)
        decision = decide(feed, probe, now, self.policy, jitter=self._rng.random())
        if decision.verdict is not Verdict.CHANGED or decision.parsed is None:
            if decision.verdict is Verdict.FAILED:
                cycle.turns.done(n)  # nothing to store
                return await self._failed(feed, now, decision, base)
            # queued before its turn passes: the cycle's last batch has it
            cycle.writer.add_record(_fetch_record(feed, now, decision))
            cycle.turns.done(n)
            return _Outcome(
                replace(
                    base,
                    not_modified=decision.verdict is Verdict.NOT_MODIFIED,
                    unchanged=decision.verdict is Verdict.UNCHANGED,
                    next_poll_at=decision.next_poll_at,
                )
            )
        # new content: store, match, then remember the validators
        parsed = decision.parsed
        progress.seen = len(parsed.items)
        async with cycle.turns.turn(n):
            rows = await self._matched_rows(parsed, matcher, progress)
            parts = cycle.writer.add_rows(feed.id, rows, _fetch_record(feed, now, decision))
        for part in parts:
            # committed: whatever fails from here on, these go to the fan-out
            progress.committed.extend(await part)
        if parsed.bozo_warning:
            log.info("%s is ill-formed but readable: %s", feed.url, parsed.bozo_warning)
        result = replace(
            _stored_so_far(base, progress),
            next_poll_at=decision.next_poll_at,
            bozo_warning=parsed.bozo_warning,
        )
        return _Outcome(result, progress.committed)

    async def _matched_rows(
        self, parsed: ParsedFeed, matcher: ItemMatcher, progress: _Progress
    ) -> list[ItemRow]:
        """The document's rows with their default matches. The parser worker prepared
        them (keys, plain text, and matches when the pool compiled the default
        watchlist); what it did not match is matched here."""
        rows = parsed.rows if parsed.rows is not None else prepare_items(parsed.items, None)
        trust_workers = self.parser.watchlist is not None
        return [
            r
            if trust_workers and r.matches is not None
            else await self._matched(r, matcher, progress)
            for r in rows
        ]

    async def _matched(self, row: ItemRow, matcher: ItemMatcher, progress: _Progress) -> ItemRow:
        try:
            found = tuple(matcher.match(row.item.title, row.item.summary))
        except Exception:
            # a matcher bug on one item must not lose the feed's other items: the item
            # is stored (and can be re-matched later), the failure is logged
            log.exception("matching item %s (%s) failed", row.item.guid, row.item.link)
            progress.match_errors += 1
            found = ()
        # matching is CPU work on the loop thread: let commands in between items
        await asyncio.sleep(0)
        return replace(row, matches=found)


def _fetch_record(feed: FeedState, now: datetime, decision: PollDecision) -> FetchSuccess:
    """What a successful fetch records (validators, next poll, the feed's own title)."""
    return FetchSuccess(
        feed.id,
        at=now,
        next_poll_at=decision.next_poll_at,
        etag=decision.etag,
        last_modified=decision.last_modified,
        content_hash=decision.content_hash,
        title=decision.title,
    )


def _stored_so_far(base: FeedPollResult, progress: _Progress) -> FeedPollResult:
    return replace(
        base,
        new_items=len(progress.committed),
        seen_items=max(progress.seen, len(progress.committed)),
        matched_items=sum(1 for m in progress.committed if m.matches),
        match_errors=progress.match_errors,
    )
