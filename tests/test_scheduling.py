"""Digest schedules: slots across timezones and DST, catch-up after downtime."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.config import Settings
from bot.core.clock import FakeClock
from bot.scheduling import Scheduler, next_slot, previous_slot, slot_key
from bot.storage.base import ChannelRecord
from bot.storage.sql import SqlStorage

NY = ZoneInfo("America/New_York")
SH = ZoneInfo("Asia/Shanghai")


def channel(
    time: str | None = "08:00",
    tz: str = "UTC",
    days: str | None = None,
    last: datetime | None = None,
    paused: str | None = None,
) -> ChannelRecord:
    return ChannelRecord(
        id=1,
        platform="console",
        external_id="c",
        guild_id=None,
        name="c",
        timezone=tz,
        digest_time=time,
        digest_days=days,
        last_digest_at=last,
        paused_reason=paused,
    )


def test_next_slot_is_in_the_channels_timezone() -> None:
    ch = channel("08:00", "Asia/Shanghai")
    after = datetime(2023, 11, 14, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai
    slot = next_slot(ch, after)
    assert slot == datetime(2023, 11, 15, 8, 0, tzinfo=SH)
    assert slot.astimezone(UTC) == datetime(2023, 11, 15, 0, 0, tzinfo=UTC)


def test_slot_keeps_local_time_across_dst_end() -> None:
    # New York leaves DST on Sun 5 Nov 2023: 08:00 local is 12:00Z before, 13:00Z after.
    ch = channel("08:00", "America/New_York")
    before = next_slot(ch, datetime(2023, 11, 4, 0, 0, tzinfo=UTC))
    after = next_slot(ch, before)
    assert before is not None
    assert after is not None
    assert before.astimezone(UTC) == datetime(2023, 11, 4, 12, 0, tzinfo=UTC)
    assert after.astimezone(UTC) == datetime(2023, 11, 5, 13, 0, tzinfo=UTC)
    assert after.astimezone(NY).hour == 8
    assert after.astimezone(UTC) - before.astimezone(UTC) == timedelta(hours=25)


def test_slot_in_skipped_hour_of_dst_start_still_fires_once() -> None:
    # 02:30 does not exist in New York on 10 Mar 2024; the digest must still go out that day.
    ch = channel("02:30", "America/New_York")
    slot = next_slot(ch, datetime(2024, 3, 10, 5, 0, tzinfo=UTC))  # 00:00 local
    assert slot is not None
    assert slot.astimezone(NY).date() == datetime(2024, 3, 10).date()
    following = next_slot(ch, slot)
    assert following is not None
    assert following.astimezone(NY).date().day == 11


def test_weekday_schedule_skips_weekend() -> None:
    ch = channel("09:00", "UTC", days="mon-fri")
    friday = datetime(2023, 11, 17, 10, 0, tzinfo=UTC)
    assert next_slot(ch, friday) == datetime(2023, 11, 20, 9, 0, tzinfo=UTC)  # Monday


def test_previous_slot_and_no_schedule() -> None:
    ch = channel("08:00", "UTC")
    now = datetime(2023, 11, 14, 7, 59, tzinfo=UTC)
    assert previous_slot(ch, now) == datetime(2023, 11, 13, 8, 0, tzinfo=UTC)
    assert previous_slot(ch, now.replace(hour=8, minute=0)) == now.replace(hour=8, minute=0)
    assert next_slot(channel(None), now) is None
    assert previous_slot(channel(None), now) is None


def test_slot_key_is_stable_across_timezones() -> None:
    a = datetime(2023, 11, 15, 8, 0, tzinfo=SH)
    assert slot_key(a) == slot_key(a.astimezone(UTC)) == "digest:2023-11-15T00:00Z"


@pytest.fixture
async def storage():
    s = SqlStorage("sqlite+aiosqlite:///:memory:")
    await s.open()
    yield s
    await s.close()


async def _scheduler(
    storage: SqlStorage, clock: FakeClock, runs: list[tuple[int, datetime]], grace_hours: float = 12
) -> Scheduler:
    settings = Settings()
    settings = settings.model_copy(
        update={"digest": settings.digest.model_copy(update={"misfire_grace_hours": grace_hours})}
    )

    async def run_digest(channel_id: int, slot: datetime) -> None:
        runs.append((channel_id, slot))

    async def run_poll() -> None:
        return None

    return Scheduler(
        settings=settings, storage=storage, clock=clock, run_poll=run_poll, run_digest=run_digest
    )


async def test_catch_up_sends_a_missed_digest_once(storage: SqlStorage) -> None:
    ch = await storage.get_channel("console", "ops")
    await storage.set_schedule(ch.id, time="08:00", timezone="Asia/Shanghai", days=None)
    # Last digest went out on the 13th; the bot was down over the 14th's 08:00 slot.
    await storage.set_last_digest_at(ch.id, datetime(2023, 11, 13, 8, 0, tzinfo=SH))
    clock = FakeClock(datetime(2023, 11, 14, 10, 30, tzinfo=SH))
    runs: list[tuple[int, datetime]] = []
    sched = await _scheduler(storage, clock, runs)
    sent = await sched.catch_up()
    assert sent == [(ch.id, datetime(2023, 11, 14, 8, 0, tzinfo=SH))]
    assert runs == sent
    # Once delivered (the outbox advances last_digest_at), a second catch-up does nothing.
    await storage.set_last_digest_at(ch.id, runs[0][1])
    assert await sched.catch_up() == []


async def test_catch_up_ignores_slots_past_grace_and_paused_channels(storage: SqlStorage) -> None:
    ch = await storage.get_channel("console", "old")
    await storage.set_schedule(ch.id, time="08:00", timezone="UTC", days=None)
    await storage.set_last_digest_at(ch.id, datetime(2023, 11, 10, 8, 0, tzinfo=UTC))
    paused = await storage.get_channel("console", "paused")
    await storage.set_schedule(paused.id, time="08:00", timezone="UTC", days=None)
    await storage.set_last_digest_at(paused.id, datetime(2023, 11, 10, 8, 0, tzinfo=UTC))
    await storage.set_paused(paused.id, "Missing Permissions (403)")
    clock = FakeClock(datetime(2023, 11, 14, 21, 0, tzinfo=UTC))  # 13 h after the slot
    runs: list[tuple[int, datetime]] = []
    sched = await _scheduler(storage, clock, runs, grace_hours=12)
    assert await sched.catch_up() == []
    clock.set(datetime(2023, 11, 14, 19, 0, tzinfo=UTC))  # 11 h after: within grace
    assert await sched.catch_up() == [(ch.id, datetime(2023, 11, 14, 8, 0, tzinfo=UTC))]


async def test_jobs_are_rebuilt_from_storage_and_report_next_runs(storage: SqlStorage) -> None:
    ch = await storage.get_channel("console", "ops")
    ch = await storage.set_schedule(ch.id, time="07:15", timezone="Europe/Berlin", days=None)
    clock = FakeClock(datetime(2023, 11, 14, 12, 0, tzinfo=UTC))
    runs: list[tuple[int, datetime]] = []
    sched = await _scheduler(storage, clock, runs)
    await sched.start(poll_now=False)
    try:
        job = sched._aps.get_job(f"digest:{ch.id}")
        assert job is not None
        nxt = sched.next_digest(ch)
        assert nxt == datetime(2023, 11, 15, 7, 15, tzinfo=ZoneInfo("Europe/Berlin"))
        assert sched.next_poll() is not None
        # Turning the schedule off removes the job; a paused channel has no next digest.
        off = await storage.set_schedule(ch.id, time=None, timezone=None, days=None)
        await sched.on_schedule_changed(off)
        assert sched._aps.get_job(f"digest:{ch.id}") is None
        assert sched.next_digest(replace(ch, paused_reason="403")) is None
    finally:
        await sched.shutdown()
