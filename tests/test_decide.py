"""The poll decision, from data alone: no server, no database, no clock."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from bot.config import PollSettings
from bot.core.models import FetchResult, Item
from bot.core.ports import FeedState
from bot.feeds.decide import PollPolicy, Verdict, decide, failure
from bot.feeds.parse import ParsedFeed
from bot.feeds.probe import ProbeResult, content_hash

NOW = datetime(2023, 11, 14, 8, 0, tzinfo=UTC)
URL = "https://wire.example/rss"
POLICY = PollPolicy(interval=timedelta(minutes=15), backoff_base=60, backoff_max=3600)
BODY = b"<rss version='2.0'><channel><title>Wire</title></channel></rss>"

FEED = FeedState(
    id=1,
    url=URL,
    name="Wire",
    lang=None,
    etag='"v1"',
    last_modified="Mon, 13 Nov 2023 08:00:00 GMT",
    content_hash="old-hash",
    consecutive_failures=0,
    next_poll_at=None,
    origin="config",
)
ITEM = Item(
    guid="w1",
    title="Wang Yi meets Blinken",
    summary="",
    link="https://wire.example/1",
    canonical_link="https://wire.example/1",
    published=NOW,
    feed_url=URL,
    source="Wire",
)


def fetched(**kw: object) -> FetchResult:
    return replace(FetchResult(url=URL, final_url=URL, status=200), **kw)  # type: ignore[arg-type]


def got_body(body: bytes = BODY, parsed: ParsedFeed | None = None, **kw: object) -> ProbeResult:
    return ProbeResult(
        fetched(body=body, **kw),
        content_hash(body),
        parsed or ParsedFeed(title="The Wire", items=[ITEM]),
    )


def test_a_new_document_is_stored_and_its_validators_remembered() -> None:
    probe = got_body(etag='"v2"', last_modified="Tue, 14 Nov 2023 07:59:00 GMT")
    d = decide(FEED, probe, NOW, POLICY, jitter=0.5)
    assert d.verdict is Verdict.CHANGED
    assert d.ok
    assert d.parsed is probe.parsed
    assert (d.etag, d.last_modified) == ('"v2"', "Tue, 14 Nov 2023 07:59:00 GMT")
    assert d.content_hash == content_hash(BODY)
    assert d.title == "The Wire"
    assert d.error is None
    # the next poll: one interval on, a minute early so a tick just before still finds it
    assert d.next_poll_at == NOW + timedelta(minutes=14)


def test_the_early_margin_is_a_tenth_of_a_short_interval() -> None:
    short = PollPolicy(interval=timedelta(minutes=5))
    d = decide(FEED, got_body(), NOW, short, jitter=0.5)
    assert d.next_poll_at == NOW + timedelta(minutes=5) - timedelta(seconds=30)


def test_not_modified_keeps_the_known_validators_and_hash() -> None:
    d = decide(FEED, ProbeResult(fetched(status=304, not_modified=True)), NOW, POLICY, jitter=0)
    assert d.verdict is Verdict.NOT_MODIFIED
    assert (d.etag, d.last_modified, d.content_hash) == (
        FEED.etag,
        FEED.last_modified,
        FEED.content_hash,
    )
    assert d.parsed is None
    assert d.next_poll_at == NOW + timedelta(minutes=14)


def test_not_modified_with_new_validators_remembers_them() -> None:
    probe = ProbeResult(fetched(status=304, not_modified=True, etag='"v3"'))
    d = decide(FEED, probe, NOW, POLICY, jitter=0)
    assert (d.etag, d.last_modified) == ('"v3"', FEED.last_modified)


def test_the_same_bytes_as_last_time_are_unchanged() -> None:
    feed = replace(FEED, content_hash=content_hash(BODY))
    probe = ProbeResult(fetched(body=BODY), content_hash(BODY))  # not parsed
    d = decide(feed, probe, NOW, POLICY, jitter=0)
    assert d.verdict is Verdict.UNCHANGED
    assert d.ok
    assert d.parsed is None
    # the response's validators (none here) replace the old ones
    assert (d.etag, d.last_modified, d.content_hash) == (None, None, content_hash(BODY))
    assert d.next_poll_at == NOW + timedelta(minutes=14)


def test_a_fetch_error_backs_off_from_the_base_delay() -> None:
    probe = ProbeResult(fetched(status=500, error="HTTP 500 Internal Server Error"))
    most = decide(FEED, probe, NOW, POLICY, jitter=1.0)
    least = decide(FEED, probe, NOW, POLICY, jitter=0.0)
    assert most.verdict is Verdict.FAILED
    assert not most.ok
    assert most.error == "HTTP 500 Internal Server Error"
    assert most.next_poll_at == NOW + timedelta(seconds=60)
    assert least.next_poll_at == NOW + timedelta(seconds=48)  # jittered down by 20%
    assert (most.etag, most.content_hash) == (None, None)  # nothing to remember


@pytest.mark.parametrize(
    ("failures_before", "seconds"), [(0, 60), (1, 120), (2, 240), (5, 1920), (6, 3600), (60, 3600)]
)
def test_consecutive_failures_double_the_delay_up_to_the_cap(
    failures_before: int, seconds: float
) -> None:
    feed = replace(FEED, consecutive_failures=failures_before)
    probe = ProbeResult(fetched(status=None, error="timed out after 30s"))
    d = decide(feed, probe, NOW, POLICY, jitter=1.0)
    assert d.next_poll_at == NOW + timedelta(seconds=seconds)


def test_retry_after_is_the_earliest_retry() -> None:
    busy = ProbeResult(fetched(status=503, error="HTTP 503", retry_after=7200.0))
    assert decide(FEED, busy, NOW, POLICY, jitter=1.0).next_poll_at == NOW + timedelta(hours=2)
    # a Retry-After shorter than the backoff does not shorten it
    soon = ProbeResult(fetched(status=429, error="HTTP 429", retry_after=5.0))
    assert decide(FEED, soon, NOW, POLICY, jitter=1.0).next_poll_at == NOW + timedelta(minutes=1)


def test_a_document_that_is_not_a_feed_is_a_failure() -> None:
    probe = ProbeResult(
        fetched(body=b"<html></html>"),
        content_hash(b"<html></html>"),
        parse_error="not a feed: the address returned a web page (HTML)",
    )
    d = decide(replace(FEED, consecutive_failures=1), probe, NOW, POLICY, jitter=1.0)
    assert d.verdict is Verdict.FAILED
    assert d.error == "not a feed: the address returned a web page (HTML)"
    assert d.next_poll_at == NOW + timedelta(minutes=2)


def test_a_later_failure_backs_off_the_same_way() -> None:
    d = failure(
        replace(FEED, consecutive_failures=2), "database is locked", NOW, POLICY, jitter=1.0
    )
    assert (d.verdict, d.error) == (Verdict.FAILED, "database is locked")
    assert d.next_poll_at == NOW + timedelta(minutes=4)


def test_the_policy_comes_from_the_poll_settings() -> None:
    policy = PollPolicy.from_settings(
        PollSettings(interval_minutes=30, backoff_base_seconds=10, backoff_max_seconds=100)
    )
    assert policy == PollPolicy(interval=timedelta(minutes=30), backoff_base=10, backoff_max=100)
    assert PollPolicy.from_settings(PollSettings()) == PollPolicy()
