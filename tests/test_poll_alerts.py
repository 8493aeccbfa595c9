"""Every item a poll commits reaches the alert fan-out exactly once: when storage fails
partway through a feed (the batches committed before the failure still go out), and when
the process dies after a commit and before the fan-out (start-up recovery sends them,
and a later restart sends nothing twice).

End to end: loopback feed server -> real fetcher -> real parser pool -> a real SQLite
file (a SqlStorage that fails on its Nth ``store_batch``) -> the service's fan-out ->
the outbox -> a recording sink."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from feedserver import FeedServer, rss

from bot.app import service_options
from bot.config import HttpSettings, PollSettings, Settings
from bot.core.clock import FakeClock
from bot.core.cycle import FeedRows, FetchSuccess
from bot.core.delivery import Outbox
from bot.core.digest import Digest
from bot.core.matching import compile_watchlist
from bot.core.models import FeedSource
from bot.core.ports import ChannelRecord, MatchedItem
from bot.core.replies import ChannelContext
from bot.core.service import BriefingService
from bot.errors import StorageError
from bot.feeds.fetch import Fetcher
from bot.feeds.guard import make_url_guard
from bot.feeds.parse import ParserPool
from bot.feeds.poll import Poller
from bot.feeds.probe import FeedProbe
from bot.storage.sql import SqlStorage
from bot.watchlist_files import default_watchlist

T0 = datetime(2023, 11, 14, 8, 0, tzinfo=UTC)
ADMIN = ChannelContext("console", "news", channel_name="news", can_manage=True)
MATCHER = compile_watchlist(default_watchlist())
STORE_BATCH = 100  # new items per transaction in these tests
ITEMS = 150  # a feed of one and a half store batches


def story(i: int) -> dict[str, str]:
    return {
        "title": f"Li Qiang opens session {i} zq{i}x",
        "link": f"https://wire.example/li-qiang/{i}",
        "guid": f"lq-{i}",
        "description": f"Report number {i}.",
        "pubDate": "Tue, 14 Nov 2023 07:00:00 GMT",
    }


class Crash(BaseException):
    """The process dies here (nothing after it runs: not an Exception any handler
    catches)."""


class FailingStorage(SqlStorage):
    """A real SQLite storage whose ``store_batch`` call number ``fail_on`` (counting
    from 1) raises ``error`` instead of storing; every other call works."""

    def __init__(self, url: str, *, fail_on: int | None, error: BaseException) -> None:
        super().__init__(url)
        self.fail_on = fail_on
        self.error = error
        self.inserts = 0

    async def store_batch(  # type: ignore[override]
        self,
        parts: Sequence[FeedRows],
        *,
        fetched_at: datetime,
        records: Sequence[FetchSuccess] = (),
    ) -> list[list[MatchedItem]]:
        self.inserts += 1
        if self.inserts == self.fail_on:
            raise self.error
        return await super().store_batch(parts, fetched_at=fetched_at, records=records)


class RecordingSink:
    def __init__(self) -> None:
        self.sent: list[tuple[int, Digest, str]] = []

    async def send(self, channel: ChannelRecord, digest: Digest, *, nonce: str) -> list[str]:
        self.sent.append((channel.id, digest, nonce))
        return [f"m{len(self.sent)}"]


@dataclass
class Run:
    """One run of the bot: storage, poller, service (the fan-out), outbox and sink."""

    storage: FailingStorage
    poller: Poller
    service: BriefingService
    sink: RecordingSink
    #: the item ids the poller handed to the fan-out, in order
    handed: list[int] = field(default_factory=list)


@pytest.fixture(scope="module")
def pool() -> Iterator[ParserPool]:
    p = ParserPool(kind="process")
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


async def start(
    db: Path,
    feed: FeedSource,
    *,
    clock: FakeClock,
    fetcher: Fetcher,
    pool: ParserPool,
    fail_on: int | None = None,
    error: BaseException | None = None,
) -> Run:
    storage = FailingStorage(
        f"sqlite+aiosqlite:///{db}",
        fail_on=fail_on,
        error=error or StorageError("database is locked"),
    )
    await storage.open()
    await storage.sync_config_feeds([feed])
    sink = RecordingSink()
    service = BriefingService(
        storage=storage,
        clock=clock,
        options=service_options(Settings()),
        watchlist=default_watchlist(),
        prober=FeedProbe(fetcher=fetcher, parser=pool, url_guard=make_url_guard()),
        outbox=Outbox(storage, clock, {"console": sink}),
    )
    poller = Poller(
        storage,
        fetcher,
        lambda: MATCHER,
        clock,
        Settings(),
        parser=pool,
        rng=random.Random(3),
        store_batch=STORE_BATCH,
    )
    run = Run(storage, poller, service, sink)

    async def fan_out(items: list[MatchedItem]) -> None:
        run.handed.extend(m.stored.id for m in items)
        await service.handle_new_items(items)

    poller.on_new_items = fan_out
    return run


async def committed(storage: SqlStorage) -> set[int]:
    stored = await storage.items_between(T0 - timedelta(days=2), T0 + timedelta(days=2))
    return {s.id for s in stored}


async def alerted_ids(run: Run) -> set[int]:
    channel = await run.service.channel(ADMIN)
    return await run.storage.alerted(channel.id, sorted(await committed(run.storage)))


async def test_items_committed_before_a_storage_error_still_reach_the_fan_out(
    tmp_path: Path, server: FeedServer, fetcher: Fetcher, pool: ParserPool
) -> None:
    """The second batch of the feed fails: the first batch is stored, and is handed to
    the fan-out (and alerted) in that same cycle, not lost for good. The next cycle
    stores the rest; nothing is handed or alerted twice."""
    assert ITEMS > STORE_BATCH
    url = server.feed("/wire.xml", rss([story(i) for i in range(ITEMS)]))
    clock = FakeClock(T0)
    run = await start(
        tmp_path / "bot.db",
        FeedSource(url, "Wire"),
        clock=clock,
        fetcher=fetcher,
        pool=pool,
        fail_on=2,
    )
    try:
        reply = await run.service.dispatch(
            ADMIN, "track", {"kind": "actor", "name": "Li Qiang", "mode": "instant"}
        )
        assert not reply.error, reply.text

        report = await run.poller.poll_once()
        (res,) = report.results
        assert res.error is not None
        assert "database is locked" in res.error
        first = await committed(run.storage)
        assert len(first) == STORE_BATCH
        assert res.new_items == STORE_BATCH  # what the feed stored before it failed
        assert sorted(run.handed) == sorted(first)
        assert await alerted_ids(run) == first
        sends = len(run.sink.sent)
        assert sends > 0

        clock.set(res.next_poll_at or T0)  # the retry: storage works again
        again = await run.poller.poll_once()
        assert again.results[0].error is None
        assert (again.new_items, again.already_stored) == (ITEMS - STORE_BATCH, STORE_BATCH)
        every = await committed(run.storage)
        assert len(every) == ITEMS
        # every committed item was handed over exactly once ...
        assert len(run.handed) == len(set(run.handed))
        assert set(run.handed) == every
        # ... and alerted; the first cycle's alerts were not sent again
        assert await alerted_ids(run) == every
        nonces = [nonce for _, _, nonce in run.sink.sent]
        assert len(nonces) == len(set(nonces))
        assert len(run.sink.sent) > sends
    finally:
        await run.storage.close()


async def test_items_committed_before_the_process_dies_are_alerted_once_after_restart(
    tmp_path: Path, server: FeedServer, fetcher: Fetcher, pool: ParserPool
) -> None:
    """The process dies after the feed's first batch is committed, before any fan-out.
    The next run's start-up recovery alerts that batch; its first poll stores and
    alerts the rest; a further restart (and its recovery) alerts nothing twice."""
    url = server.feed("/wire.xml", rss([story(i) for i in range(ITEMS)]))
    feed = FeedSource(url, "Wire")
    db = tmp_path / "bot.db"
    clock = FakeClock(T0)

    first = await start(db, feed, clock=clock, fetcher=fetcher, pool=pool, fail_on=2, error=Crash())
    try:
        reply = await first.service.dispatch(
            ADMIN, "track", {"kind": "actor", "name": "Li Qiang", "mode": "instant"}
        )
        assert not reply.error, reply.text
        with pytest.raises(Crash):
            await first.poller.poll_once()
        assert first.handed == []
        assert first.sink.sent == []
        assert len(await committed(first.storage)) == STORE_BATCH
    finally:
        await first.storage.close()

    clock.advance(minutes=1)
    second = await start(db, feed, clock=clock, fetcher=fetcher, pool=pool)
    try:
        recovered = await second.service.recover_interrupted_poll(MATCHER)
        assert recovered == STORE_BATCH
        batch = await committed(second.storage)
        assert await alerted_ids(second) == batch
        report = await second.poller.poll_once()
        assert report.results[0].error is None
        assert report.new_items == ITEMS - STORE_BATCH
        every = await committed(second.storage)
        assert len(every) == ITEMS
        assert set(second.handed) == every - batch  # not the recovered batch again
        assert await alerted_ids(second) == every
        nonces = [nonce for _, _, nonce in second.sink.sent]
        assert len(nonces) == len(set(nonces))
    finally:
        await second.storage.close()

    clock.advance(minutes=1)
    third = await start(db, feed, clock=clock, fetcher=fetcher, pool=pool)
    try:
        await third.service.recover_interrupted_poll(MATCHER)
        assert third.sink.sent == []  # nothing alerted twice
        assert await alerted_ids(third) == every
    finally:
        await third.storage.close()


async def test_items_a_failed_hand_off_left_are_handed_over_with_the_next_cycle(
    tmp_path: Path, server: FeedServer, fetcher: Fetcher, pool: ParserPool
) -> None:
    """The fan-out itself fails (the database is locked while it records alerts): the
    cycle reports it, and the next cycle, which finds nothing new, hands the same items
    over again; once they went through, they are not handed again."""
    url = server.feed("/wire.xml", rss([story(i) for i in range(3)]))
    clock = FakeClock(T0)
    run = await start(
        tmp_path / "bot.db", FeedSource(url, "Wire"), clock=clock, fetcher=fetcher, pool=pool
    )
    calls: list[list[int]] = []

    async def flaky_fan_out(items: list[MatchedItem]) -> None:
        calls.append([m.stored.id for m in items])
        if len(calls) == 1:
            raise StorageError("database is locked")
        await run.service.handle_new_items(items)

    run.poller.on_new_items = flaky_fan_out
    try:
        await run.service.dispatch(
            ADMIN, "track", {"kind": "actor", "name": "Li Qiang", "mode": "instant"}
        )
        first = await run.poller.poll_once()
        assert first.hook_error == "database is locked"
        every = await committed(run.storage)
        assert sorted(calls[0]) == sorted(every)
        assert await alerted_ids(run) == set()

        clock.advance(minutes=15)
        second = await run.poller.poll_once()
        assert second.results[0].unchanged  # nothing new from the feed ...
        assert second.hook_error is None
        assert calls[1] == calls[0]  # ... but the items waiting were handed over
        assert await alerted_ids(run) == every

        clock.advance(minutes=15)
        await run.poller.poll_once()
        assert len(calls) == 2  # nothing handed twice once it went through
    finally:
        await run.storage.close()
