"""What one poll of a feed means for the feed: decided from data, with no I/O.

The poller probes a feed (:func:`bot.feeds.probe.probe_feed`: fetch, then parse) and
hands the result here with the feed's state and the time; :func:`decide` says what it
means: new content to store, not modified (304), unchanged (the same bytes as last
time), or a failure, with the next poll time and what to remember (validators, body
hash, title) or the error text. :func:`failure` does the same for a failure that comes
later (storing the items, a bug). Like the decider of lemon24/reader's ``_update.py``
it interacts with no dependency and only processes data, so every rule is tested
without a server, a database or a clock (``tests/test_decide.py``).

It lives beside the poller rather than in the core because what it interprets is the
fetch layer's (HTTP validators, Retry-After, a body hash, the fetch backoff), and the
feed state it reads is the poller's record; it imports nothing that does I/O.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from bot.config import PollSettings
from bot.core.backoff import next_poll_delay
from bot.core.ports import FeedState
from bot.feeds.parse import ParsedFeed
from bot.feeds.probe import ProbeResult

#: the most a next poll after a success is moved earlier (see PollPolicy.next_success)
SUCCESS_SLACK = timedelta(seconds=60)


class Verdict(StrEnum):
    #: a new document was parsed: store its items, then remember the validators
    CHANGED = "changed"
    #: the server answered 304 Not Modified
    NOT_MODIFIED = "not_modified"
    #: the body is byte-identical to the last one: not parsed
    UNCHANGED = "unchanged"
    #: the fetch or the parse failed: back off
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class PollPolicy:
    """The timing rules (from ``[poll]`` in the config)."""

    interval: timedelta = timedelta(minutes=15)
    #: the first retry after a failure, doubled per further consecutive failure
    backoff_base: float = 60.0
    backoff_max: float = 6 * 3600.0

    @classmethod
    def from_settings(cls, poll: PollSettings) -> PollPolicy:
        return cls(
            interval=timedelta(minutes=poll.interval_minutes),
            backoff_base=poll.backoff_base_seconds,
            backoff_max=poll.backoff_max_seconds,
        )

    def next_success(self, now: datetime) -> datetime:
        """A little early, so that a scheduler tick a moment before the exact interval
        still finds the feed due (else it would wait a whole extra cycle)."""
        slack = min(SUCCESS_SLACK, self.interval / 10)
        return now + self.interval - slack

    def next_failure(
        self, failures: int, now: datetime, *, jitter: float, retry_after: float | None
    ) -> datetime:
        """After ``failures`` consecutive failures (this one included): exponential
        backoff, jittered down by up to 20% (``jitter`` in [0, 1]: 0 is the most
        shaved off, 1 none), never sooner than ``retry_after`` seconds."""
        delay = next_poll_delay(
            failures,
            interval=self.interval.total_seconds(),
            base=self.backoff_base,
            max_delay=self.backoff_max,
            retry_after=retry_after,
            rng=_Draw(jitter),
        )
        return now + timedelta(seconds=delay)


class _Draw(random.Random):
    """A "random" source that answers one given draw: keeps the decision a function of
    its inputs while the backoff stays the one in :mod:`bot.feeds.fetch`."""

    def __init__(self, draw: float) -> None:
        super().__init__(0)
        self.draw = min(max(draw, 0.0), 1.0)

    def uniform(self, a: float, b: float) -> float:
        return a + (b - a) * self.draw


@dataclass(frozen=True, slots=True)
class PollDecision:
    verdict: Verdict
    next_poll_at: datetime
    #: FAILED: the one-line reason, recorded on the feed and shown to users
    error: str | None = None
    #: the document to store (CHANGED)
    parsed: ParsedFeed | None = None
    #: what to remember on success: HTTP validators, the body's hash, the feed's title
    etag: str | None = None
    last_modified: str | None = None
    content_hash: str | None = None
    title: str | None = None

    @property
    def ok(self) -> bool:
        return self.verdict is not Verdict.FAILED


def failure(
    feed: FeedState,
    error: str,
    now: datetime,
    policy: PollPolicy,
    *,
    jitter: float,
    retry_after: float | None = None,
) -> PollDecision:
    """A failed poll: the feed backs off (its validators and body hash are kept)."""
    next_at = policy.next_failure(
        feed.consecutive_failures + 1, now, jitter=jitter, retry_after=retry_after
    )
    return PollDecision(Verdict.FAILED, next_at, error=error)


def decide(
    feed: FeedState, probe: ProbeResult, now: datetime, policy: PollPolicy, *, jitter: float
) -> PollDecision:
    """What ``probe`` (a fetch of ``feed`` at ``now``, and its parse) means for it.
    ``jitter`` (a uniform draw in [0, 1]) places a failure's retry in the backoff's
    jitter range."""
    fetched = probe.fetched
    if fetched.error is not None:
        return failure(
            feed, fetched.error, now, policy, jitter=jitter, retry_after=fetched.retry_after
        )
    next_at = policy.next_success(now)
    if fetched.not_modified:
        return PollDecision(
            Verdict.NOT_MODIFIED,
            next_at,
            etag=fetched.etag or feed.etag,
            last_modified=fetched.last_modified or feed.last_modified,
            content_hash=feed.content_hash,
        )
    if probe.content_hash is not None and probe.content_hash == feed.content_hash:
        return PollDecision(
            Verdict.UNCHANGED,
            next_at,
            etag=fetched.etag,
            last_modified=fetched.last_modified,
            content_hash=probe.content_hash,
        )
    if probe.parse_error is not None or probe.parsed is None:
        error = probe.parse_error or "internal error: the document was not parsed"
        return failure(feed, error, now, policy, jitter=jitter)
    return PollDecision(
        Verdict.CHANGED,
        next_at,
        parsed=probe.parsed,
        etag=fetched.etag,
        last_modified=fetched.last_modified,
        content_hash=probe.content_hash,
        title=probe.parsed.title,
    )
