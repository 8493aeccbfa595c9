"""Digests: /digest now, schedule, off, group, and the scheduled digest."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from bot.app import App
from bot.core.clock import FakeClock
from bot.core.matching import compile_watchlist
from bot.core.models import Item
from bot.core.service import BriefingService
from bot.feeds.dedupe import keys_for_batch
from bot.storage.sql import SqlStorage
from bot.watchlist_files import default_watchlist
from usecases.env import (
    ADMIN,
    NOW,
    OTHER,
    READER,
    FakeSchedule,
    RecordingSink,
    feed_id,
    seed,
    titles_in,
)


async def test_digest_schedule_and_off(service: BriefingService, schedule: FakeSchedule) -> None:
    reply = await service.dispatch(
        ADMIN, "digest schedule", {"time": "7:30", "tz": "Asia/Shanghai", "days": "weekdays"}
    )
    assert not reply.error, reply.text
    assert "Digest scheduled at 07:30 (Asia/Shanghai), on mon-fri." in reply.text
    assert "Next digest:" in reply.text
    channel = await service.channel(ADMIN)
    assert (channel.digest_time, channel.timezone, channel.digest_days) == (
        "07:30",
        "Asia/Shanghai",
        "mon-fri",
    )
    assert [c.digest_time for c in schedule.changed] == ["07:30"]
    off = await service.dispatch(ADMIN, "digest off", {})
    assert "turned off" in off.text
    channel = await service.channel(ADMIN)
    assert channel.digest_time is None
    assert channel.timezone == "Asia/Shanghai"
    assert [c.digest_time for c in schedule.changed] == ["07:30", None]
    again = await service.dispatch(ADMIN, "digest off", {})
    assert "no scheduled digest" in again.text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"time": "25:00"}, "not a time of day"),
        ({"time": "8 am"}, "not a time of day"),
        ({"time": "08:00", "tz": "Mars/Olympus"}, "Unknown timezone"),
        ({"time": "08:00", "days": "someday"}, "is not a day"),
        ({"time": "08:00", "days": "mon-fri-sun"}, "not a day or a range"),
        ({"tz": "Mars/Olympus"}, "Unknown timezone"),  # no time: the default, checked
    ],
)
async def test_digest_schedule_bad_input_changes_nothing(
    service: BriefingService,
    storage: SqlStorage,
    schedule: FakeSchedule,
    args: dict[str, str],
    message: str,
) -> None:
    channel = await service.channel(ADMIN)
    await storage.set_schedule(channel.id, time="06:00", timezone="Europe/Paris", days="mon")
    reply = await service.dispatch(ADMIN, "digest schedule", args)
    assert reply.error
    assert message in reply.text
    after = await storage.channel_by_id(channel.id)
    assert (after.digest_time, after.timezone, after.digest_days) == (
        "06:00",
        "Europe/Paris",
        "mon",
    )
    assert schedule.changed == []


async def test_digest_now_without_a_sink_answers_with_the_digest(
    service: BriefingService, storage: SqlStorage
) -> None:
    await seed(storage, ["Yellen and He Lifeng hold talks"])
    reply = await service.dispatch(ADMIN, "digest now", {})
    assert not reply.ephemeral
    assert reply.digest is not None
    assert reply.digest.kind == "digest"
    assert titles_in(reply) == ["Yellen and He Lifeng hold talks"]


async def test_build_channel_digest_covers_since_the_last_digest(
    service: BriefingService, storage: SqlStorage
) -> None:
    await seed(storage, ["Old: Putin visits Beijing"], ago=timedelta(hours=20))
    await seed(storage, ["New: Wang Yi meets Blinken"], ago=timedelta(hours=1))
    channel = await service.channel(ADMIN)
    first = await service.build_channel_digest(channel, NOW)
    assert first.period_start == NOW - timedelta(hours=24)
    assert len(list(first.lines())) == 2
    await storage.set_last_digest_at(channel.id, NOW - timedelta(hours=5))
    channel = await storage.channel_by_id(channel.id)
    second = await service.build_channel_digest(channel, NOW)
    assert [line.title for line in second.lines()] == ["New: Wang Yi meets Blinken"]


async def test_wrapped_day_range_is_scheduled_not_a_crash(app: App) -> None:
    reply = await app.service.dispatch(
        ADMIN, "digest schedule", {"time": "08:00", "days": "fri-mon"}
    )
    assert not reply.error, reply.text
    assert "Digest scheduled at 08:00 (UTC), on fri,sat,sun,mon." in reply.text
    assert "Next digest: Fri 17 Nov 08:00" in reply.text  # NOW is Wednesday 15 Nov
    channel = await app.service.channel(ADMIN)
    assert channel.digest_days == "fri,sat,sun,mon"
    assert app.scheduler._aps.get_job(f"digest:{channel.id}") is not None
    status = await app.service.dispatch(READER, "status", {})
    assert not status.error
    assert "Next digest: Fri 17 Nov 08:00 UTC (08:00 UTC, fri,sat,sun,mon)" in status.text


async def test_first_scheduled_digest_is_caught_up_after_downtime(
    app: App, clock: FakeClock
) -> None:
    await seed(app.storage, ["Wang Yi meets Blinken"], ago=timedelta(hours=3))
    reply = await app.service.dispatch(ADMIN, "digest schedule", {"time": "15:00"})
    assert "The first digest covers stories from now on" in reply.text
    channel = await app.service.channel(ADMIN)
    assert channel.last_digest_at == NOW  # the schedule's start
    # the bot is down over the first slot (15:00) and back at 16:00
    clock.set(NOW + timedelta(hours=4))
    await seed(app.storage, ["Putin visits Beijing"], ago=timedelta(hours=-1))  # 13:00
    sent = await app.scheduler.catch_up()
    assert sent == [(channel.id, NOW + timedelta(hours=3))]
    sink = app.sinks["console"]
    assert isinstance(sink, RecordingSink)
    [digest] = sink.sent
    assert digest.period_start == NOW
    assert [line.title for line in digest.lines()] == ["Putin visits Beijing"]
    assert await app.scheduler.catch_up() == []  # once
    # a channel that already had digests keeps its last digest time on a new schedule
    clock.set(NOW + timedelta(hours=5))
    await app.service.dispatch(ADMIN, "digest schedule", {"time": "09:00"})
    assert (await app.service.channel(ADMIN)).last_digest_at == NOW + timedelta(hours=3)


async def test_digest_group_by_story_is_one_ranked_list(
    service: BriefingService, storage: SqlStorage
) -> None:
    await seed(storage, ["Wang Yi meets Blinken in Washington"], ago=timedelta(hours=1))
    await seed(storage, ["Wang Yi meets Blinken in Washington"], feed=OTHER, ago=timedelta(hours=1))
    await seed(storage, ["Putin visits Beijing", "Taiwan holds drills"], ago=timedelta(hours=2))
    denied = await service.dispatch(READER, "digest group", {"by": "story"})
    assert denied.error
    by_entry = await service.dispatch(READER, "brief", {})
    assert by_entry.digest is not None
    assert len(by_entry.digest.groups) > 1
    reply = await service.dispatch(ADMIN, "digest group", {"by": "story"})
    assert not reply.error, reply.text
    assert "grouped by story" in reply.text
    brief = await service.dispatch(READER, "brief", {})
    digest = brief.digest
    assert digest is not None
    assert digest.group_by == "story"
    [group] = digest.groups
    assert group.label is None
    titles = [line.title for line in group.stories]
    assert sorted(titles) == sorted(
        ["Wang Yi meets Blinken in Washington", "Putin visits Beijing", "Taiwan holds drills"]
    )
    assert titles[0] == "Wang Yi meets Blinken in Washington"  # two outlets rank first
    assert {t.entry_id for t in group.stories[0].tags} >= {"wang-yi", "antony-blinken"}
    bad = await service.dispatch(ADMIN, "digest group", {"by": "outlet"})
    assert bad.error
    assert "by must be one of: entry, story" in bad.text


MATCHER = compile_watchlist(default_watchlist())


async def test_consecutive_digests_go_by_publication_and_miss_no_late_arrival(
    service: BriefingService, storage: SqlStorage
) -> None:
    """A digest covers what was published in its period, plus what was published
    before it but fetched only in it (it was in no earlier digest); never twice."""
    channel = await service.channel(ADMIN)
    fid = await feed_id(storage, OTHER.url)

    async def store(guid: str, title: str, published: datetime, fetched: datetime) -> None:
        item = Item(
            guid=guid,
            title=title,
            summary="",
            link=f"https://other.example/{guid}",
            canonical_link=f"https://other.example/{guid}",
            published=published,
            feed_url=OTHER.url,
            source=OTHER.name,
        )
        [stored] = await storage.insert_items(fid, keys_for_batch([item]), fetched_at=fetched)
        await storage.add_matches(stored.id, MATCHER.match(title, ""))

    first_end = NOW - timedelta(hours=2)
    await store(
        "on-time", "Wang Yi meets Blinken", NOW - timedelta(hours=5), NOW - timedelta(hours=5)
    )
    first = await service.build_channel_digest(channel, first_end)
    assert [line.title for line in first.lines()] == ["Wang Yi meets Blinken"]
    await storage.set_last_digest_at(channel.id, first_end)
    channel = await storage.channel_by_id(channel.id)
    # published before the first digest's end, but fetched after it
    await store(
        "late",
        "Putin visits Beijing",
        first_end - timedelta(minutes=10),
        first_end + timedelta(minutes=20),
    )
    await store(
        "news", "Blinken visits Beijing", NOW - timedelta(hours=1), NOW - timedelta(minutes=50)
    )
    second = await service.build_channel_digest(channel, NOW)
    assert sorted(line.title for line in second.lines()) == [
        "Blinken visits Beijing",
        "Putin visits Beijing",
    ]
    # /brief goes by publication only: the late item is in its 2 h window's past
    brief = await service.dispatch(ADMIN, "brief", {"hours": 2})
    assert titles_in(brief) == ["Blinken visits Beijing"]
