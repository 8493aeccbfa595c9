"""The outbox (once-only, confirmed, retried, paused on refusal), scheduled and on-demand
digests through it, and instant alerts from new items."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from bot.app import service_options
from bot.config import Settings
from bot.core.clock import FakeClock
from bot.core.delivery import Outbox, backoff
from bot.core.digest import Digest, build_digest
from bot.core.matching import compile_watchlist
from bot.core.models import FeedSource, Item
from bot.core.ports import ChannelRecord, MatchedItem
from bot.core.replies import ChannelContext
from bot.core.schedule import slot_key
from bot.core.service import BriefingService
from bot.core.watchlist import slugify
from bot.errors import DeliveryError
from bot.feeds.dedupe import keys_for_batch
from bot.feeds.guard import make_url_guard
from bot.feeds.parse import ParserPool
from bot.feeds.probe import FeedProbe
from bot.storage.sql import SqlStorage
from bot.watchlist_files import default_watchlist

NOW = datetime(2023, 11, 15, 12, 0, tzinfo=UTC)
WIRE = FeedSource("https://wire.example/rss", "Wire")
TIMES = FeedSource("https://times.example/rss", "Times")
ADMIN = ChannelContext("console", "news", channel_name="news", can_manage=True)


class RecordingSink:
    """A platform stand-in: records what it was asked to post; can be told to fail."""

    def __init__(self) -> None:
        self.sent: list[tuple[int, Digest, str]] = []
        self.calls = 0
        self.fail: DeliveryError | None = None

    async def send(self, channel: ChannelRecord, digest: Digest, *, nonce: str) -> list[str]:
        self.calls += 1
        if self.fail is not None:
            raise self.fail
        self.sent.append((channel.id, digest, nonce))
        return [f"m{len(self.sent)}"]


class NoFetcher:
    async def fetch(self, _url: str, **_kw: object) -> object:
        raise AssertionError("no fetch expected")


@pytest.fixture
async def storage() -> AsyncIterator[SqlStorage]:
    s = SqlStorage("sqlite+aiosqlite:///:memory:")
    await s.open()
    await s.sync_config_feeds([WIRE, TIMES])
    yield s
    await s.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOW)


@pytest.fixture
def sink() -> RecordingSink:
    return RecordingSink()


@pytest.fixture
def outbox(storage: SqlStorage, clock: FakeClock, sink: RecordingSink) -> Outbox:
    return Outbox(storage, clock, {"console": sink})


@pytest.fixture
def service(storage: SqlStorage, clock: FakeClock, outbox: Outbox) -> BriefingService:
    return BriefingService(
        storage=storage,
        clock=clock,
        options=service_options(Settings()),
        watchlist=default_watchlist(),
        prober=FeedProbe(
            fetcher=NoFetcher(), parser=ParserPool(kind="thread"), url_guard=make_url_guard()
        ),
        outbox=outbox,
    )


async def channel(service: BriefingService) -> ChannelRecord:
    return await service.channel(ADMIN)


def small_digest(end: datetime = NOW) -> Digest:
    return build_digest(
        [],
        entries={},
        period_start=end - timedelta(hours=24),
        period_end=end,
        tz="UTC",
        now=end,
    )


async def poll(
    storage: SqlStorage,
    titles: list[str],
    *,
    feed: FeedSource = WIRE,
    at: datetime = NOW,
    published: datetime | None = None,
) -> list[MatchedItem]:
    """What the poller does with new items: store, match defaults, hand them over."""
    fid = next(f.id for f in await storage.all_feeds() if f.url == feed.url)
    items = []
    for t in titles:
        link = f"{feed.url.removesuffix('/rss')}/{slugify(t)}"
        items.append(
            Item(
                guid=link,
                title=t,
                summary="",
                link=link,
                canonical_link=link,
                published=at if published is None else published,
                feed_url=feed.url,
                source=feed.name,
            )
        )
    stored = await storage.insert_items(fid, keys_for_batch(items), fetched_at=at)
    matcher = compile_watchlist(default_watchlist())
    out = []
    for s in stored:
        found = tuple(matcher.match(s.item.title, s.item.summary))
        if found:
            await storage.add_matches(s.id, found, scope=None)
        out.append(MatchedItem(s, found))
    return out


# -- the outbox ------------------------------------------------------------------------


async def test_a_key_is_delivered_once(
    service: BriefingService, outbox: Outbox, sink: RecordingSink, storage: SqlStorage
) -> None:
    ch = await channel(service)
    first = await outbox.deliver(ch, "digest", "digest:x", small_digest())
    assert first is not None
    assert first.status == "sent"
    assert first.message_ids == ["m1"]
    assert await outbox.deliver(ch, "digest", "digest:x", small_digest()) is None
    assert sink.calls == 1
    stored = await storage.get_delivery(ch.id, "digest:x")
    assert stored is not None
    assert stored.status == "sent"
    assert stored.message_ids == ["m1"]
    assert (await storage.channel_by_id(ch.id)).last_digest_at == NOW


async def test_transient_failure_stays_pending_and_retries_with_backoff_and_same_nonce(
    service: BriefingService,
    outbox: Outbox,
    sink: RecordingSink,
    storage: SqlStorage,
    clock: FakeClock,
) -> None:
    ch = await channel(service)
    sink.fail = DeliveryError("HTTP 503 from the platform")
    result = await outbox.deliver(ch, "digest", "digest:y", small_digest())
    assert result is not None
    assert result.status == "pending"
    assert result.attempts == 1
    [pending] = await storage.pending_deliveries(ch.id)
    assert pending.last_error == "HTTP 503 from the platform"
    # not confirmed: the channel's last digest did not move
    assert (await storage.channel_by_id(ch.id)).last_digest_at is None
    sink.fail = None
    assert await outbox.retry_pending() == 0  # backoff not over
    assert sink.sent == []
    clock.advance(seconds=backoff(1).total_seconds() + 1)
    assert await outbox.retry_pending() == 1
    [(_, digest, nonce)] = sink.sent
    assert nonce == pending.nonce
    assert digest == small_digest()  # rebuilt from the stored payload, unchanged
    assert await storage.pending_deliveries() == []
    assert (await storage.channel_by_id(ch.id)).last_digest_at == NOW
    assert await outbox.retry_pending() == 0


async def test_permanent_failure_pauses_the_channel_without_retrying(
    service: BriefingService,
    outbox: Outbox,
    sink: RecordingSink,
    storage: SqlStorage,
    clock: FakeClock,
) -> None:
    ch = await channel(service)
    sink.fail = DeliveryError("403 Missing Access", permanent=True)
    result = await outbox.deliver(ch, "digest", "digest:z", small_digest())
    assert result is not None
    assert result.status == "failed"
    paused = await storage.channel_by_id(ch.id)
    assert paused.paused_reason == "delivery refused: 403 Missing Access"
    assert await storage.pending_deliveries() == []
    clock.advance(hours=2)
    assert await outbox.retry_pending(force=True) == 0
    assert sink.calls == 1  # no retry storm
    # nothing more goes to a paused channel
    assert await outbox.deliver(paused, "alert", "alert:1", small_digest()) is None
    assert sink.calls == 1
    status = await service.dispatch(ADMIN, "status", {})
    assert "paused: delivery refused: 403 Missing Access" in status.text
    # someone with the permission resumes it
    resumed = await service.dispatch(ADMIN, "digest schedule", {"time": "08:00"})
    assert "Posting resumed" in resumed.text
    assert (await storage.channel_by_id(ch.id)).paused_reason is None


async def test_restart_resends_pending_once_with_the_same_nonce(
    service: BriefingService,
    outbox: Outbox,
    sink: RecordingSink,
    storage: SqlStorage,
    clock: FakeClock,
) -> None:
    ch = await channel(service)
    sink.fail = DeliveryError("connection reset")
    await outbox.deliver(ch, "alert", "alert:7", small_digest())
    [pending] = await storage.pending_deliveries()
    # the process restarts: a new outbox, a working platform
    fresh_sink = RecordingSink()
    restarted = Outbox(storage, clock, {"console": fresh_sink})
    assert await restarted.retry_pending() == 1
    assert [nonce for _, _, nonce in fresh_sink.sent] == [pending.nonce]
    assert await restarted.retry_pending(force=True) == 0
    assert len(fresh_sink.sent) == 1
    done = await storage.get_delivery(ch.id, "alert:7")
    assert done is not None
    assert done.status == "sent"


async def test_no_sink_for_the_platform_keeps_it_pending(
    storage: SqlStorage, clock: FakeClock, service: BriefingService
) -> None:
    ch = await channel(service)
    lonely = Outbox(storage, clock, {})
    result = await lonely.deliver(ch, "digest", "digest:n", small_digest())
    assert result is not None
    assert result.status == "pending"
    assert "no console connection" in (result.last_error or "")


# -- digests through the outbox --------------------------------------------------------


async def test_scheduled_digest_is_sent_once_per_slot(
    service: BriefingService, sink: RecordingSink, storage: SqlStorage, clock: FakeClock
) -> None:
    await poll(storage, ["Wang Yi meets Blinken"], at=NOW - timedelta(hours=3))
    ch = await channel(service)
    slot = NOW - timedelta(minutes=1)
    await service.send_scheduled_digest(ch.id, slot)
    await service.send_scheduled_digest(ch.id, slot)  # a restart, a coalesced run
    assert len(sink.sent) == 1
    digest = sink.sent[0][1]
    assert [line.title for line in digest.lines()] == ["Wang Yi meets Blinken"]
    assert digest.period_end == slot
    assert (await storage.channel_by_id(ch.id)).last_digest_at == slot
    assert await storage.get_delivery(ch.id, slot_key(slot, ch.timezone)) is not None
    # the next slot covers only what came after
    await poll(storage, ["Putin visits Beijing"], at=NOW + timedelta(hours=1))
    clock.advance(hours=24)
    await service.send_scheduled_digest(ch.id, slot + timedelta(hours=24))
    assert [line.title for line in sink.sent[1][1].lines()] == ["Putin visits Beijing"]


async def test_a_digest_pending_across_the_next_slot_is_not_repeated_by_the_next(
    service: BriefingService,
    outbox: Outbox,
    sink: RecordingSink,
    storage: SqlStorage,
    clock: FakeClock,
) -> None:
    await poll(storage, ["Wang Yi meets Blinken"], at=NOW - timedelta(hours=3))
    ch = await channel(service)
    slot = NOW - timedelta(minutes=1)
    # the last confirmed digest: the slot before
    await storage.set_last_digest_at(ch.id, slot - timedelta(hours=24))
    sink.fail = DeliveryError("HTTP 503 from the platform")
    await service.send_scheduled_digest(ch.id, slot)
    [pending] = await storage.pending_deliveries(ch.id)
    assert [line.title for line in Digest.from_payload(pending.payload).lines()] == [
        "Wang Yi meets Blinken"
    ]
    # the platform is still down when the next slot fires: its digest starts where the
    # pending one ended, not at the last confirmed digest
    await poll(storage, ["Putin visits Beijing"], at=NOW + timedelta(hours=1))
    clock.advance(hours=24)
    following = slot + timedelta(hours=24)
    await service.send_scheduled_digest(ch.id, following)
    second = await storage.get_delivery(ch.id, slot_key(following, ch.timezone))
    assert second is not None
    assert second.status == "pending"
    assert Digest.from_payload(second.payload).period_start == slot
    # the platform is back: both go out, and each story is posted once
    sink.fail = None
    assert await outbox.retry_pending(force=True) == 2
    assert [[line.title for line in d.lines()] for _, d, _ in sink.sent] == [
        ["Wang Yi meets Blinken"],
        ["Putin visits Beijing"],
    ]
    assert (await storage.channel_by_id(ch.id)).last_digest_at == following


async def test_digest_now_posts_through_the_sink_and_moves_the_period(
    service: BriefingService, sink: RecordingSink, storage: SqlStorage, clock: FakeClock
) -> None:
    await poll(storage, ["Yellen meets He Lifeng"], at=NOW - timedelta(hours=1))
    reply = await service.dispatch(ADMIN, "digest now", {})
    assert "Digest posted (1 story" in reply.text
    assert len(sink.sent) == 1
    clock.advance(minutes=5)
    again = await service.dispatch(ADMIN, "digest now", {})
    assert "Nothing new to post" in again.text
    assert "Digest posted" not in again.text
    assert len(sink.sent) == 1  # nothing posted
    await poll(storage, ["Putin visits Beijing"], at=clock.now() - timedelta(minutes=1))
    clock.advance(minutes=1)
    more = await service.dispatch(ADMIN, "digest now", {})
    assert "Digest posted (1 story" in more.text
    assert [line.title for line in sink.sent[1][1].lines()] == ["Putin visits Beijing"]
    sink.fail = DeliveryError("403 Missing Access", permanent=True)
    await poll(storage, ["Blinken visits Beijing"], at=clock.now())
    clock.advance(minutes=5)
    refused = await service.dispatch(ADMIN, "digest now", {})
    assert refused.error
    assert "could not be posted: 403 Missing Access" in refused.text
    clock.advance(minutes=5)
    paused = await service.dispatch(ADMIN, "digest now", {})
    assert "paused" in paused.text
    assert paused.digest is not None  # still answered, as a reply


async def test_digest_now_by_a_member_is_a_preview_that_moves_nothing(
    service: BriefingService, sink: RecordingSink, storage: SqlStorage, clock: FakeClock
) -> None:
    member = ChannelContext("console", "news", channel_name="news", can_manage=False)
    await poll(storage, ["Yellen meets He Lifeng"], at=NOW - timedelta(hours=1))
    preview = await service.dispatch(member, "digest now", {})
    assert not preview.error, preview.text
    assert not preview.ephemeral
    assert "preview" in preview.text
    assert preview.digest is not None
    assert preview.digest.title == "Digest preview"
    assert [line.title for line in preview.digest.lines()] == ["Yellen meets He Lifeng"]
    assert sink.sent == []  # nothing posted
    channel = await service.channel(member)
    assert channel.last_digest_at is None  # the next digest's window did not move
    clock.advance(minutes=5)
    posted = await service.dispatch(ADMIN, "digest now", {})
    assert "Digest posted (1 story" in posted.text
    assert [line.title for line in sink.sent[0][1].lines()] == ["Yellen meets He Lifeng"]


# -- instant alerts --------------------------------------------------------------------


async def test_no_instant_alert_for_backlog(
    service: BriefingService, sink: RecordingSink, storage: SqlStorage
) -> None:
    reply = await service.dispatch(
        ADMIN, "track", {"kind": "actor", "name": "Li Qiang", "mode": "instant"}
    )
    assert not reply.error, reply.text
    # a feed's archive: published five days before it was fetched
    old = await poll(
        storage, ["Li Qiang meets Scholz in Berlin"], published=NOW - timedelta(days=5)
    )
    await service.handle_new_items(old)
    assert sink.sent == []
    fresh = await poll(
        storage,
        ["Li Qiang opens the import expo in Shanghai"],
        published=NOW - timedelta(minutes=30),
    )
    await service.handle_new_items(fresh)
    assert [[line.title for line in d.lines()] for _, d, _ in sink.sent] == [
        ["Li Qiang opens the import expo in Shanghai"]
    ]


async def test_instant_alert_once_per_story(
    service: BriefingService, sink: RecordingSink, storage: SqlStorage, clock: FakeClock
) -> None:
    reply = await service.dispatch(
        ADMIN, "track", {"kind": "actor", "name": "Li Qiang", "mode": "instant"}
    )
    assert not reply.error, reply.text
    await service.dispatch(ADMIN, "track", {"kind": "topic", "name": "Rare earths"})
    fresh = await poll(
        storage, ["Li Qiang meets Scholz in Berlin", "Rare earths prices jump", "Weather"]
    )
    await service.handle_new_items(fresh)
    assert len(sink.sent) == 1
    digest = sink.sent[0][1]
    assert digest.kind == "alert"
    assert digest.title == "Alert: Li Qiang"
    assert [line.title for line in digest.lines()] == ["Li Qiang meets Scholz in Berlin"]
    # the items also count for /brief (channel-scoped matches were stored)
    clock.advance(minutes=1)
    brief = await service.dispatch(ADMIN, "brief", {})
    assert brief.digest is not None
    assert {line.title for line in brief.digest.lines()} == {
        "Li Qiang meets Scholz in Berlin",
        "Rare earths prices jump",
    }
    # the same batch again, and another outlet's copy of the same story: no new alert
    await service.handle_new_items(fresh)
    clock.advance(minutes=15)
    copy = await poll(
        storage, ["Li Qiang meets Scholz in Berlin for talks"], feed=TIMES, at=clock.now()
    )
    await service.handle_new_items(copy)
    assert len(sink.sent) == 1
    # a different story is alerted
    other = await poll(storage, ["Li Qiang visits Hanoi as Vietnam ties deepen"], at=clock.now())
    await service.handle_new_items(other)
    assert len(sink.sent) == 2
    # another channel, without the instant entry, gets nothing
    assert {ch for ch, _, _ in sink.sent} == {(await channel(service)).id}


async def test_no_alert_for_feeds_the_channel_removed(
    service: BriefingService, sink: RecordingSink, storage: SqlStorage
) -> None:
    await service.dispatch(ADMIN, "track", {"kind": "actor", "name": "Li Qiang", "mode": "instant"})
    await service.dispatch(ADMIN, "feeds remove", {"feed": "Times"})
    fresh = await poll(storage, ["Li Qiang in Tokyo"], feed=TIMES)
    await service.handle_new_items(fresh)
    assert sink.sent == []


# -- one send at a time per delivery ------------------------------------------------------


class GatedSink(RecordingSink):
    """A slow platform: a send is held until ``gate`` opens if its nonce is in ``hold``,
    or if ``hold_next`` is set (the next send only)."""

    def __init__(self) -> None:
        super().__init__()
        self.hold: set[str] = set()
        self.hold_next = False
        self.gate = asyncio.Event()
        self.entered = asyncio.Event()
        self.nonces: list[str] = []

    async def send(self, channel: ChannelRecord, digest: Digest, *, nonce: str) -> list[str]:
        self.nonces.append(nonce)
        if self.hold_next or nonce in self.hold:
            self.hold_next = False
            self.entered.set()
            await self.gate.wait()
        return await super().send(channel, digest, nonce=nonce)


async def test_a_delivery_being_sent_is_not_sent_again_by_a_retry(
    service: BriefingService, storage: SqlStorage, clock: FakeClock
) -> None:
    ch = await channel(service)
    sink = GatedSink()
    outbox = Outbox(storage, clock, {"console": sink})
    sink.hold_next = True
    sending = asyncio.create_task(outbox.deliver(ch, "digest", "digest:slow", small_digest()))
    await asyncio.wait_for(sink.entered.wait(), 5)
    (pending,) = await storage.pending_deliveries()
    # the scheduler's retry job and the adapter's resend-on-connect fire meanwhile
    assert await asyncio.wait_for(outbox.retry_pending(), 1) == 0
    assert await asyncio.wait_for(outbox.retry_pending(force=True), 1) == 0
    assert outbox.in_flight(pending.id)
    assert sink.nonces == [pending.nonce]  # not handed to the platform a second time
    sink.gate.set()
    result = await asyncio.wait_for(sending, 5)
    assert result is not None
    assert result.status == "sent"
    assert not outbox.in_flight(pending.id)
    assert sink.nonces == [pending.nonce]
    assert len(sink.sent) == 1
    assert await outbox.retry_pending(force=True) == 0
    assert len(sink.sent) == 1


async def test_two_retry_runs_never_send_the_same_delivery_twice(
    service: BriefingService, storage: SqlStorage, clock: FakeClock
) -> None:
    ch = await channel(service)
    sink = GatedSink()
    outbox = Outbox(storage, clock, {"console": sink})
    sink.fail = DeliveryError("HTTP 503 from the platform")
    await outbox.deliver(ch, "digest", "digest:a", small_digest())
    await outbox.deliver(ch, "alert", "alert:b", small_digest())
    first, second = await storage.pending_deliveries()
    sink.fail = None
    sink.nonces.clear()
    sink.hold = {first.nonce}
    # run 1 (the retry job) lists both and is slow on the first ...
    run1 = asyncio.create_task(outbox.retry_pending(force=True))
    await asyncio.wait_for(sink.entered.wait(), 5)
    # ... run 2 (the resend on connect) skips the one in flight and sends the second
    assert await asyncio.wait_for(outbox.retry_pending(force=True), 1) == 1
    sink.gate.set()
    # run 1 then finds the second sent: it re-reads it rather than trusting its list
    assert await asyncio.wait_for(run1, 5) == 1
    assert sorted(sink.nonces) == sorted([first.nonce, second.nonce])
    assert len(sink.sent) == 2
    assert await storage.pending_deliveries() == []
    for key in ("digest:a", "alert:b"):
        done = await storage.get_delivery(ch.id, key)
        assert done is not None
        assert done.status == "sent"
