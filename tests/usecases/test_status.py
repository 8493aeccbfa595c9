"""/status, /help and option autocomplete."""

from __future__ import annotations

from datetime import timedelta

from bot.app import App
from bot.core.commands import Autocomplete
from bot.core.models import FeedSource
from bot.core.replies import ChannelContext
from bot.core.service import BriefingService
from bot.storage.sql import SqlStorage
from usecases.env import (
    ADMIN,
    NOW,
    OTHER,
    READER,
    feed_id,
    seed,
)


async def test_status(service: BriefingService, storage: SqlStorage) -> None:
    await seed(storage, ["Wang Yi meets Blinken", "Weather"])
    other_id = await feed_id(storage, OTHER.url)
    for _ in range(3):
        await storage.record_fetch_failure(
            other_id,
            at=NOW - timedelta(minutes=30),
            next_poll_at=NOW + timedelta(hours=1),
            error="timed out after 30s",
        )
    channel = await service.channel(ADMIN)
    text = (await service.dispatch(READER, "status", {})).text
    assert "Feeds: 2 (0 ok, 1 failing, 1 not polled yet)" in text
    assert "✗ Other Times: timed out after 30s (3× in a row, last 30 min ago)" in text
    assert "Items stored today from this channel's feeds: 2" in text
    assert "Next poll: Wed 15 Nov 12:10 UTC (in 10 min)" in text
    assert "Digest: not scheduled" in text
    await service.dispatch(ADMIN, "digest schedule", {"time": "15:00"})
    await storage.set_paused(channel.id, "delivery refused: 403 Missing Access")
    text = (await service.dispatch(READER, "status", {})).text
    assert "Next digest: Wed 15 Nov 15:00 UTC (15:00 UTC, every day)" in text
    assert "paused: delivery refused: 403 Missing Access" in text
    # scheduling set where the first digest starts, but none was sent yet
    assert (await storage.channel_by_id(channel.id)).last_digest_at is not None
    assert "Last digest" not in text


async def test_help(service: BriefingService) -> None:
    reply = await service.dispatch(READER, "help", {})
    assert any(line.startswith("/brief") for line in reply.lines)
    detail = await service.dispatch(READER, "help", {"command": "track"})
    assert "name: the name shown in digests" in detail.text


async def test_autocomplete(service: BriefingService) -> None:
    entries = await service.autocomplete(READER, Autocomplete.ENTRY, "wang")
    assert ("Wang Yi (wang-yi)", "wang-yi") in entries
    feeds = await service.autocomplete(READER, Autocomplete.FEED, "other")
    assert [v for _, v in feeds] == [OTHER.url]
    zones = await service.autocomplete(READER, Autocomplete.TIMEZONE, "shanghai")
    assert ("Asia/Shanghai", "Asia/Shanghai") in zones


async def test_status_survives_a_stored_schedule_it_cannot_use(app: App) -> None:
    channel = await app.service.channel(ADMIN)
    # stored by an older version, unusable now
    await app.storage.set_schedule(channel.id, time="08:00", timezone="UTC", days="caturday")
    await app.scheduler.on_schedule_changed(await app.storage.channel_by_id(channel.id))
    status = await app.service.dispatch(READER, "status", {})
    assert not status.error, status.text
    assert "Digest: 08:00 UTC, caturday (not running)" in status.text
    assert app.scheduler._aps.get_job(f"digest:{channel.id}") is None
    fixed = await app.service.dispatch(ADMIN, "digest schedule", {"time": "08:00"})
    assert not fixed.error
    assert app.scheduler._aps.get_job(f"digest:{channel.id}") is not None


async def test_status_counts_only_this_channels_feeds(
    service: BriefingService, storage: SqlStorage
) -> None:
    await seed(storage, ["Wang Yi meets Blinken", "Weather"])
    other_channel = await storage.get_channel("console", "elsewhere")
    private = FeedSource("https://private.example/rss", "Private Wire")
    await storage.add_feed(private, channel_id=other_channel.id)
    await seed(storage, ["A", "B", "C"], feed=private)
    await seed(storage, ["Yesterday's news"], ago=timedelta(hours=13))  # 23:00 yesterday
    text = (await service.dispatch(READER, "status", {})).text
    assert "Items stored today from this channel's feeds: 2" in text
    elsewhere = ChannelContext("console", "elsewhere", user="bob")
    text = (await service.dispatch(elsewhere, "status", {})).text
    assert "Items stored today from this channel's feeds: 5" in text
