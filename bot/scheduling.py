"""APScheduler 3 wiring: the poll job, one trigger per channel digest, catch-up, shutdown.

Jobs live in APScheduler's memory store and are rebuilt from the database at start-up
(no pickled job store: the database is the single source of truth).

Digest slots are computed by the core (:mod:`bot.core.schedule`), not by APScheduler's
CronTrigger: a channel has at most ONE slot per local calendar day, at its local HH:MM
(:class:`~bot.core.schedule.DigestSchedule`); :class:`DigestTrigger` fires at them.
(CronTrigger fires twice in a repeated hour, and asking it for the fire time after
the second one returns that same time again: APScheduler then loops forever.)

Missed digests: APScheduler cannot know about a slot that passed while the process was
down (its jobs are new), so :meth:`Scheduler.catch_up` computes, per channel, the latest
slot before now; if the channel's last digest predates it and it is within the grace
period, that slot is sent once now. (The service records the schedule's start as the
channel's last digest when a first schedule is set, so a first slot is caught up too.)

Shutdown (:meth:`Scheduler.shutdown`): no new runs start; a running poll or digest job
gets a bounded time to finish, then is cancelled cleanly (no traceback).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.job import Job
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.interval import IntervalTrigger

from bot.config import Settings
from bot.core.clock import Clock
from bot.core.ports import ChannelRecord, Storage
from bot.core.schedule import DigestSchedule, channel_schedule, next_slot, previous_slot
from bot.errors import InputError

log = logging.getLogger(__name__)

DigestRunner = Callable[[int, datetime], Awaitable[None]]
PollRunner = Callable[[], Awaitable[object]]

POLL_JOB = "poll"
RETRY_JOB = "retry-deliveries"
POLL_TICK_MINUTES = 1.0
#: how long shutdown waits for a running poll or digest job before cancelling it
SHUTDOWN_GRACE_SECONDS = 10.0


# APScheduler 3 ships no types, so BaseTrigger is Any to mypy (subclassing Any: misc)
class DigestTrigger(BaseTrigger):  # type: ignore[misc]
    """An APScheduler trigger firing at a :class:`DigestSchedule`'s slots: once per local
    day, strictly increasing (so APScheduler's catch-up loop always progresses)."""

    __slots__ = ("schedule",)

    def __init__(self, schedule: DigestSchedule) -> None:
        self.schedule = schedule

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        if previous_fire_time is not None:
            return self.schedule.next_after(previous_fire_time)
        return self.schedule.next_after(now - timedelta(microseconds=1))

    def __str__(self) -> str:
        s = self.schedule
        return f"digest[{s.hour:02d}:{s.minute:02d} {s.tz_name} days={sorted(s.days)}]"

    __repr__ = __str__


def digest_trigger(channel: ChannelRecord) -> DigestTrigger | None:
    """The channel's digest trigger in its own timezone (None: off). InputError if the
    stored schedule cannot be used."""
    schedule = channel_schedule(channel)
    return DigestTrigger(schedule) if schedule is not None else None


class Scheduler:
    """Owns the AsyncIOScheduler. Also answers /status's next-run questions.

    Two clocks: APScheduler fires jobs on wall time (its triggers and run times are
    always real instants); ``clock`` (a FakeClock in tests) drives only our own slot
    logic: catch-up, the slot a digest job delivers, the next digest for /status."""

    def __init__(
        self,
        *,
        settings: Settings,
        storage: Storage,
        clock: Clock,
        run_poll: PollRunner,
        run_digest: DigestRunner,
        retry_deliveries: Callable[[], Awaitable[object]] | None = None,
        shutdown_grace: float = SHUTDOWN_GRACE_SECONDS,
    ) -> None:
        self._settings = settings
        self._storage = storage
        self._clock = clock
        self._run_poll = run_poll
        self._run_digest = run_digest
        self._retry = retry_deliveries
        self._aps = AsyncIOScheduler(timezone=UTC)
        self._grace = timedelta(hours=settings.digest.misfire_grace_hours)
        self._shutdown_grace = shutdown_grace
        #: job bodies running now (shutdown waits for them, then cancels them)
        self._running: set[asyncio.Task[Any]] = set()
        self._stopping = False

    # -- lifecycle -----------------------------------------------------------------
    async def start(self, *, poll_now: bool = True) -> None:
        self._stopping = False
        # The poll job only *ticks*: each feed carries its own next_poll_at (the poll
        # interval on success, backoff or Retry-After on failure), and a tick polls the
        # feeds that are due. Ticking every minute lets backoff be finer than the interval.
        interval = min(self._settings.poll.interval_minutes, POLL_TICK_MINUTES)
        # (next_run_time=None would add the job paused, so only pass it to poll now.)
        # APScheduler runs on WALL time, whatever our clock says: given a fake clock's
        # past instant it would walk every missed interval since then (millions of run
        # times, seconds per start). Our clock drives only our slot logic (catch-up,
        # the digest job's slot, /status's next digest).
        first_run = {"next_run_time": datetime.now(UTC)} if poll_now else {}
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

    async def shutdown(self, *, grace: float | None = None) -> None:
        """Stop cleanly: no new job runs; a running poll or digest job gets ``grace``
        seconds (default 10) to finish, then it is cancelled and awaited. Only then may
        the caller close the HTTP session and the database."""
        self._stopping = True
        if self._aps.running:
            self._aps.pause()  # nothing new is submitted from now on
        await asyncio.sleep(0)  # a job submitted just before the pause registers itself
        running = {t for t in self._running if not t.done()}
        if running:
            wait = self._shutdown_grace if grace is None else grace
            log.info("waiting up to %g s for %d running job(s) to finish", wait, len(running))
            _, late = await asyncio.wait(running, timeout=wait)
            for task in late:
                log.warning(
                    "stopping: cancelling job %s (still running after %g s)", task.get_name(), wait
                )
                task.cancel()
            if late:
                await asyncio.wait(late, timeout=5)
        if self._aps.running:
            self._aps.shutdown(wait=False)

    # -- digest jobs -----------------------------------------------------------------
    def schedule_channel(self, channel: ChannelRecord) -> bool:
        """(Re)build one channel's digest job from its record; removes it when off.
        A schedule that cannot be used (stored by an older version, a time zone this
        system lacks) is logged and skipped, never fatal. True if a job is scheduled."""
        job_id = f"digest:{channel.id}"
        try:
            trigger = digest_trigger(channel)
        except InputError as err:
            # the InputError is the one-line reason; a traceback adds nothing
            log.error(  # noqa: TRY400
                "channel %s: digest schedule %r %r days %r cannot be used: %s; "
                "no scheduled digest until it is set again (/digest schedule)",
                channel.id,
                channel.digest_time,
                channel.timezone,
                channel.digest_days,
                err,
            )
            trigger = None
        if trigger is None or channel.paused_reason:
            if self._aps.get_job(job_id) is not None:
                self._aps.remove_job(job_id)
            return False
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
        return True

    async def on_schedule_changed(self, channel: ChannelRecord) -> None:
        self.schedule_channel(channel)

    async def catch_up(self) -> list[tuple[int, datetime]]:
        """Send, once, each digest slot missed while the bot was down (within grace)."""
        now = self._clock.now()
        sent: list[tuple[int, datetime]] = []
        for channel in await self._storage.all_channels():
            if channel.paused_reason or channel.last_digest_at is None:
                continue
            try:
                slot = previous_slot(channel, now)
            except InputError:
                continue  # logged by schedule_channel
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
        try:
            return next_slot(channel, self._clock.now())
        except InputError:
            return None

    # -- job bodies (never raise into APScheduler: log and carry on) -------------------
    async def _guarded(self, what: str, body: Callable[[], Awaitable[object]]) -> None:
        if self._stopping:
            return
        task = asyncio.current_task()
        if task is not None:
            self._running.add(task)
        try:
            await body()
        except asyncio.CancelledError:
            if not self._stopping:
                raise
            log.info("%s cancelled at shutdown", what)
        except Exception:
            log.exception("%s failed", what)
        finally:
            if task is not None:
                self._running.discard(task)

    async def _poll_job(self) -> None:
        await self._guarded("poll cycle", self._run_poll)

    async def _retry_job(self) -> None:
        assert self._retry is not None
        await self._guarded("retrying deliveries", self._retry)

    async def _digest_job(self, channel_id: int) -> None:
        async def run() -> None:
            # The slot is the time this run was *scheduled* for, not when it ran: a late
            # or coalesced run still belongs to its slot, so its delivery key is stable.
            now = self._clock.now()
            channel = await self._storage.channel_by_id(channel_id)
            slot = previous_slot(channel, now) or now
            await self._run_digest(channel_id, slot)

        await self._guarded(f"digest for channel {channel_id}", run)
