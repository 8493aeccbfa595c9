"""The APScheduler wiring: digest jobs and triggers, catch-up after downtime, shutdown."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger
from test_schedule import NY_FIRST, NY_SECOND, SH, channel, finishes_fast, utc
from typing_extensions import override

from bot.app import App, Config, build_app
from bot.config import Settings
from bot.core.clock import FakeClock
from bot.core.delivery import Sink
from bot.core.digest import Digest
from bot.core.ports import ChannelRecord
from bot.scheduling import Scheduler, digest_trigger
from bot.storage.sql import SqlStorage
from bot.watchlist_files import default_watchlist


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


# -- daylight saving: one slot per local day, and the scheduler never spins -----------


def test_apscheduler_runs_a_repeated_hour_slot_once() -> None:
    """APScheduler's own catch-up loop (Job._get_run_times) over the repeated hour ends,
    with one run time: a CronTrigger here yields 06:30Z forever."""
    ch = channel("01:30", "America/New_York")
    trigger = digest_trigger(ch)
    assert trigger is not None
    aps = AsyncIOScheduler(timezone=UTC)
    job = aps.add_job(print, trigger, next_run_time=NY_FIRST)
    runs = finishes_fast(lambda: job._get_run_times(NY_SECOND + timedelta(minutes=10)))
    assert [utc(r) for r in runs] == [NY_FIRST]
    assert utc(trigger.get_next_fire_time(NY_FIRST, NY_SECOND)) == datetime(
        2023, 11, 6, 6, 30, tzinfo=UTC
    )


class RecordingSink(Sink):
    def __init__(self) -> None:
        self.sent: list[tuple[ChannelRecord, Digest]] = []

    @override
    async def send(self, channel: ChannelRecord, digest: Digest, *, nonce: str) -> list[str]:
        self.sent.append((channel, digest))
        return [f"m{len(self.sent)}"]


def _app(clock: FakeClock, sink: RecordingSink) -> App:
    config = Config(settings=Settings(), cfg_dir=None, watchlist=default_watchlist(), feeds=[])
    return build_app(
        config, clock=clock, sinks={"console": sink}, database_url="sqlite+aiosqlite:///:memory:"
    )


def test_repeated_hour_sends_one_digest_through_the_app() -> None:
    """The digest job body and catch-up, on the real app, over the repeated hour: one
    digest, and no endless loop (run on its own event loop in a thread, so a hang fails
    the test instead of freezing the suite)."""

    async def scenario() -> list[tuple[ChannelRecord, Digest]]:
        clock = FakeClock(NY_FIRST - timedelta(days=1))
        sink = RecordingSink()
        async with _app(clock, sink) as app:
            ch = await app.storage.get_channel("console", "ny")
            await app.storage.set_schedule(
                ch.id, time="01:30", timezone="America/New_York", days=None
            )
            await app.storage.set_last_digest_at(ch.id, NY_FIRST - timedelta(days=1))
            sched = app.scheduler
            for now in (NY_FIRST, NY_SECOND, NY_SECOND + timedelta(minutes=5)):
                clock.set(now)
                await sched._digest_job(ch.id)  # the job body, as APScheduler runs it
            clock.set(NY_SECOND + timedelta(minutes=20))
            assert await sched.catch_up() == []
            delivered = await app.storage.get_delivery(
                ch.id, "digest:2023-11-05T01:30@America/New_York"
            )
            assert delivered is not None
            assert delivered.status == "sent"
        return sink.sent

    sent = finishes_fast(lambda: asyncio.run(scenario()), seconds=20)
    assert len(sent) == 1


# -- schedules that cannot be used never stop the bot ---------------------------------


async def test_start_skips_a_stored_schedule_it_cannot_build(
    storage: SqlStorage, caplog: pytest.LogCaptureFixture
) -> None:
    # an older version stored what the scheduler cannot use
    bad = await storage.get_channel("console", "bad")
    await storage.set_schedule(bad.id, time="08:00", timezone="UTC", days="fri-funday")
    good = await storage.get_channel("console", "good")
    await storage.set_schedule(good.id, time="09:00", timezone="UTC", days="fri-mon")
    await storage.set_last_digest_at(bad.id, datetime(2023, 11, 10, 8, 0, tzinfo=UTC))
    clock = FakeClock(datetime(2023, 11, 14, 12, 0, tzinfo=UTC))  # a Tuesday
    runs: list[tuple[int, datetime]] = []
    sched = await _scheduler(storage, clock, runs)
    with caplog.at_level(logging.ERROR, logger="bot.scheduling"):
        await sched.start(poll_now=False)
    try:
        assert sched._aps.get_job(f"digest:{bad.id}") is None
        assert any(
            "cannot be used" in r.getMessage() and r.exc_info is None for r in caplog.records
        )
        assert sched.next_digest(await storage.channel_by_id(bad.id)) is None
        assert sched._aps.get_job(f"digest:{good.id}") is not None
        assert sched.next_digest(await storage.channel_by_id(good.id)) == datetime(
            2023, 11, 17, 9, 0, tzinfo=UTC
        )
        assert runs == []
    finally:
        await sched.shutdown()


# -- shutdown: no new runs, a running job finishes or is cancelled cleanly ------------


async def test_shutdown_waits_for_a_running_poll_then_cancels_a_stuck_one(
    storage: SqlStorage, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock(datetime(2023, 11, 14, 12, 0, tzinfo=UTC))
    started = asyncio.Event()
    finished: list[str] = []
    release = asyncio.Event()

    async def slow_poll() -> None:
        started.set()
        await release.wait()
        finished.append("poll")

    async def no_digest(_channel_id: int, _slot: datetime) -> None:
        return None

    def make() -> Scheduler:
        return Scheduler(
            settings=Settings(),
            storage=storage,
            clock=clock,
            run_poll=slow_poll,
            run_digest=no_digest,
            shutdown_grace=5,
        )

    # a poll that ends within the grace period is waited for
    sched = make()
    await sched.start(poll_now=True)
    await asyncio.wait_for(started.wait(), timeout=5)
    asyncio.get_running_loop().call_later(0.2, release.set)
    await asyncio.wait_for(sched.shutdown(), timeout=5)
    assert finished == ["poll"]

    # a poll stuck past the grace period is cancelled, without an error logged
    started.clear()
    release.clear()
    finished.clear()
    sched = make()
    await sched.start(poll_now=True)
    await asyncio.wait_for(started.wait(), timeout=5)
    with caplog.at_level(logging.INFO):
        await asyncio.wait_for(sched.shutdown(grace=0.2), timeout=5)
        await asyncio.sleep(0.05)  # APScheduler's job-done callback
    assert finished == []
    assert not sched._running
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert any("cancelled at shutdown" in r.getMessage() for r in caplog.records)


async def test_apscheduler_runs_on_wall_time_whatever_the_fake_clock_says(
    storage: SqlStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The poll job's first run is *now* on the wall clock, not the fake clock's 2023:
    given a past instant, APScheduler walks every missed minute since (millions of
    trigger calls, seconds per start). The first poll runs once, at once."""
    calls: list[datetime | None] = []
    fire_time = IntervalTrigger.get_next_fire_time

    def counted(self: IntervalTrigger, previous: datetime | None, now: datetime) -> datetime | None:
        calls.append(previous)
        return fire_time(self, previous, now)

    monkeypatch.setattr(IntervalTrigger, "get_next_fire_time", counted)
    clock = FakeClock(datetime(2023, 11, 14, 12, 0, tzinfo=UTC))
    polls: list[datetime] = []

    async def run_poll() -> None:
        polls.append(datetime.now(UTC))

    async def no_digest(_channel_id: int, _slot: datetime) -> None:
        return None

    sched = Scheduler(
        settings=Settings(), storage=storage, clock=clock, run_poll=run_poll, run_digest=no_digest
    )
    before = datetime.now(UTC)
    await sched.start(poll_now=True)
    try:
        for _ in range(500):
            if polls:
                break
            await asyncio.sleep(0.01)
        assert len(polls) == 1
        assert len(calls) < 10, f"APScheduler computed {len(calls)} poll run times"
        # the next tick is a minute of wall time away; the fake clock did not move
        nxt = sched.next_poll()
        assert nxt is not None
        assert before + timedelta(seconds=50) < nxt <= datetime.now(UTC) + timedelta(minutes=1)
        assert clock.now() == datetime(2023, 11, 14, 12, 0, tzinfo=UTC)
    finally:
        await sched.shutdown()
