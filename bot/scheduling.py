"""APScheduler 3 wiring: the poll job, one CronTrigger per channel digest, catch-up.

Jobs live in APScheduler's memory store and are rebuilt from the database at start-up
(no pickled job store: the database is the single source of truth). A digest slot is
identified by its scheduled fire time; the delivery key ``digest:<slot>`` makes a slot
deliverable at most once, however often the job runs (restart, catch-up, coalesce).

Missed digests: APScheduler cannot know about a slot that passed while the process was
down (its jobs are new), so :meth:`Scheduler.catch_up` computes, per channel, the latest
slot before now; if the channel's last digest predates it and it is within the grace
period, that slot is sent once now.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from apscheduler.job import Job
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from bot.config import Settings
from bot.core.clock import Clock
from bot.storage.base import ChannelRecord, Storage

log = logging.getLogger(__name__)

DigestRunner = Callable[[int, datetime], Awaitable[None]]
PollRunner = Callable[[], Awaitable[object]]

POLL_JOB = "poll"
RETRY_JOB = "retry-deliveries"
POLL_TICK_MINUTES = 1.0


def digest_trigger(channel: ChannelRecord) -> CronTrigger | None:
    """The channel's digest schedule as a CronTrigger in its own timezone (None: off)."""
    if not channel.digest_time:
        return None
    hour, minute = (int(p) for p in channel.digest_time.split(":"))
    return CronTrigger(
        hour=hour,
        minute=minute,
        day_of_week=channel.digest_days or "*",
        timezone=ZoneInfo(channel.timezone),
    )


def next_slot(channel: ChannelRecord, after: datetime) -> datetime | None:
    """The first digest slot strictly after ``after`` (aware, in the channel's tz)."""
    trigger = digest_trigger(channel)
    if trigger is None:
        return None
    result: datetime | None = trigger.get_next_fire_time(None, after + timedelta(seconds=1))
    return result


def previous_slot(
    channel: ChannelRecord, now: datetime, *, lookback_days: int = 8
) -> datetime | None:
    """The latest digest slot at or before ``now`` within ``lookback_days``."""
    trigger = digest_trigger(channel)
    if trigger is None:
        return None
    fire: datetime | None = trigger.get_next_fire_time(None, now - timedelta(days=lookback_days))
    last: datetime | None = None
    while fire is not None and fire <= now:
        last = fire
        fire = trigger.get_next_fire_time(fire, fire + timedelta(seconds=1))
    return last


def slot_key(slot: datetime) -> str:
    return "digest:" + slot.astimezone(UTC).strftime("%Y-%m-%dT%H:%MZ")


class Scheduler:
    """Owns the AsyncIOScheduler. Also answers /status's next-run questions."""

    def __init__(
        self,
        *,
        settings: Settings,
        storage: Storage,
        clock: Clock,
        run_poll: PollRunner,
        run_digest: DigestRunner,
        retry_deliveries: Callable[[], Awaitable[object]] | None = None,
    ) -> None:
        self._settings = settings
        self._storage = storage
        self._clock = clock
        self._run_poll = run_poll
        self._run_digest = run_digest
        self._retry = retry_deliveries
        self._aps = AsyncIOScheduler(timezone=UTC)
        self._grace = timedelta(hours=settings.digest.misfire_grace_hours)

    # -- lifecycle -----------------------------------------------------------------
    async def start(self, *, poll_now: bool = True) -> None:
        # The poll job only *ticks*: each feed carries its own next_poll_at (the poll
        # interval on success, backoff or Retry-After on failure), and a tick polls the
        # feeds that are due. Ticking every minute lets backoff be finer than the interval.
        interval = min(self._settings.poll.interval_minutes, POLL_TICK_MINUTES)
        # (next_run_time=None would add the job paused, so only pass it to poll now)
        first_run = {"next_run_time": self._clock.now()} if poll_now else {}
        self._aps.add_job(
            self._poll_job,
            IntervalTrigger(minutes=interval, timezone=UTC),
            id=POLL_JOB,
            name="poll feeds",
            max_instances=1,
            coalesce=True,
            misfire_grace_time=int(interval * 60),
            replace_existing=True,
            **first_run,
        )
        if self._retry is not None:
            self._aps.add_job(
                self._retry_job,
                IntervalTrigger(minutes=1, timezone=UTC),
                id=RETRY_JOB,
                name="retry pending deliveries",
                max_instances=1,
                coalesce=True,
                replace_existing=True,
            )
        for channel in await self._storage.all_channels():
            self.schedule_channel(channel)
        self._aps.start()
        await self.catch_up()

    async def shutdown(self) -> None:
        if self._aps.running:
            self._aps.shutdown(wait=False)

    # -- digest jobs -----------------------------------------------------------------
    def schedule_channel(self, channel: ChannelRecord) -> None:
        """(Re)build one channel's digest job from its record; removes it when off."""
        job_id = f"digest:{channel.id}"
        trigger = digest_trigger(channel)
        if trigger is None or channel.paused_reason:
            if self._aps.get_job(job_id) is not None:
                self._aps.remove_job(job_id)
            return
        self._aps.add_job(
            self._digest_job,
            trigger,
            args=[channel.id],
            id=job_id,
            name=f"digest for channel {channel.id}",
            max_instances=1,
            coalesce=True,
            misfire_grace_time=int(self._grace.total_seconds()),
            replace_existing=True,
        )

    async def on_schedule_changed(self, channel: ChannelRecord) -> None:
        self.schedule_channel(channel)

    async def catch_up(self) -> list[tuple[int, datetime]]:
        """Send, once, each digest slot missed while the bot was down (within grace)."""
        now = self._clock.now()
        sent: list[tuple[int, datetime]] = []
        for channel in await self._storage.all_channels():
            if channel.paused_reason or channel.last_digest_at is None:
                continue
            slot = previous_slot(channel, now)
            if slot is None or channel.last_digest_at >= slot or now - slot > self._grace:
                continue
            log.info("catching up missed digest for channel %s (slot %s)", channel.id, slot)
            await self._run_digest(channel.id, slot)
            sent.append((channel.id, slot))
        return sent

    # -- /status -----------------------------------------------------------------------
    def next_poll(self) -> datetime | None:
        job: Job | None = self._aps.get_job(POLL_JOB)
        return job.next_run_time if job is not None else None

    def next_digest(self, channel: ChannelRecord) -> datetime | None:
        if channel.paused_reason:
            return None
        return next_slot(channel, self._clock.now())

    # -- job bodies (never raise into APScheduler: log and carry on) -------------------
    async def _poll_job(self) -> None:
        try:
            await self._run_poll()
        except Exception:
            log.exception("poll cycle failed")

    async def _retry_job(self) -> None:
        assert self._retry is not None
        try:
            await self._retry()
        except Exception:
            log.exception("retrying deliveries failed")

    async def _digest_job(self, channel_id: int) -> None:
        # The slot is the time this run was *scheduled* for, not when it ran: a late or
        # coalesced run still belongs to its slot, so its delivery key is stable.
        now = self._clock.now()
        channel = await self._storage.channel_by_id(channel_id)
        slot = previous_slot(channel, now) or now
        try:
            await self._run_digest(channel_id, slot)
        except Exception:
            log.exception("digest for channel %s failed", channel_id)
