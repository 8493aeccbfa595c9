"""APScheduler 3 wiring: the poll job, one trigger per channel digest, catch-up, shutdown.

Jobs live in APScheduler's memory store and are rebuilt from the database at start-up
(no pickled job store: the database is the single source of truth).

Digest slots are computed here, not by APScheduler's CronTrigger: a channel has at most
ONE slot per local calendar day, at its local HH:MM (:class:`DigestSchedule`). That is
what a user means by "08:00 every weekday", and it keeps daylight-saving changes sane:

- in a repeated hour (autumn), the slot is the first of the two instants; the local
  date + HH:MM is the same for both, so :func:`slot_key` makes it deliverable once;
- in a skipped hour (spring), the slot moves past the gap (02:30 becomes 03:30) and
  still fires that day.

(CronTrigger fires twice in a repeated hour, and asking it for the fire time after
the second one returns that same time again: APScheduler then loops forever.)

A slot's delivery key is ``digest:<local date>T<HH:MM>@<tz>`` (``Z`` for UTC;
:func:`slot_key`, the one key function: the service delivers scheduled digests under
it), so a slot is delivered at most once however often the job runs (restart, catch-up,
coalesce).

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
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.job import Job
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.interval import IntervalTrigger

from bot.config import Settings
from bot.core.clock import Clock
from bot.errors import InputError
from bot.storage.base import ChannelRecord, Storage

log = logging.getLogger(__name__)

DigestRunner = Callable[[int, datetime], Awaitable[None]]
PollRunner = Callable[[], Awaitable[object]]

POLL_JOB = "poll"
RETRY_JOB = "retry-deliveries"
POLL_TICK_MINUTES = 1.0
#: how long shutdown waits for a running poll or digest job before cancelling it
SHUTDOWN_GRACE_SECONDS = 10.0

# -- days and times (pure: the service validates /digest schedule with these) ----------

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_FULL_DAYS = {
    "monday": "mon", "tuesday": "tue", "tues": "tue", "wednesday": "wed",
    "thursday": "thu", "thur": "thu", "thurs": "thu", "friday": "fri",
    "saturday": "sat", "sunday": "sun",
}
_DAY_ALIASES = {
    "weekdays": "mon-fri", "workdays": "mon-fri", "weekends": "sat,sun", "weekend": "sat,sun",
    "daily": "", "everyday": "", "every day": "", "all": "", "*": "",
}
_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
#: far enough to find the next (or previous) slot of any non-empty set of weekdays
_SEARCH_DAYS = 9


def _day(word: str) -> str:
    short = _FULL_DAYS.get(word, word)
    if short not in DAY_NAMES:
        raise InputError(
            f"{word!r} is not a day: use mon, tue, wed, thu, fri, sat, sun "
            "(e.g. mon-fri, or mon,wed,fri, or weekends)."
        )
    return short


def _expand(first: str, last: str) -> list[str]:
    """The days from ``first`` to ``last`` inclusive, wrapping past Sunday (fri-mon)."""
    i, j = DAY_NAMES.index(first), DAY_NAMES.index(last)
    return [DAY_NAMES[(i + k) % 7] for k in range((j - i) % 7 + 1)]


def parse_days(value: str | None) -> str | None:
    """Days as typed ("mon-fri", "mon,wed,fri", "Friday-Monday", "weekends") -> the
    stored form: comma-separated day names and forward ranges (``mon-fri``); a range
    that wraps past Sunday (``fri-mon``) is expanded into its days (``fri,sat,sun,mon``).
    None means every day (also for "daily" or all seven days). InputError otherwise."""
    if value is None:
        return None
    text = " ".join(value.strip().lower().split())
    if text in _DAY_ALIASES:
        return _DAY_ALIASES[text] or None
    parts: list[str] = []
    covered: set[str] = set()
    for raw in re.split(r"\s*,\s*|\s+", text):
        if not raw:
            continue
        ends = raw.split("-")
        if len(ends) > 2 or not all(ends):
            raise InputError(f"{raw!r} is not a day or a range of days (e.g. mon-fri).")
        days = [_day(d) for d in ends]
        if len(days) == 1:
            parts.append(days[0])
            covered.add(days[0])
            continue
        span = _expand(days[0], days[1])
        covered.update(span)
        if DAY_NAMES.index(days[0]) <= DAY_NAMES.index(days[1]):
            parts.append(f"{days[0]}-{days[1]}")
        else:
            parts.extend(span)
    if not parts or covered == set(DAY_NAMES):
        return None
    return ",".join(dict.fromkeys(parts))


def weekdays(days: str | None) -> frozenset[int]:
    """The weekdays (Monday = 0) of a stored ``digest_days`` (None or "*": all)."""
    if days is None or days.strip() in ("", "*"):
        return frozenset(range(7))
    out: set[int] = set()
    for part in days.lower().split(","):
        ends = [p.strip() for p in part.split("-")]
        if len(ends) > 2 or not all(ends):
            raise InputError(f"{days!r} is not a list of days")
        names = [_day(e) for e in ends]
        out.update(DAY_NAMES.index(d) for d in _expand(names[0], names[-1]))
    return frozenset(out)


def parse_timezone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InputError(
            f"{name!r} is not a time zone: use an IANA name such as Europe/Berlin, "
            "Asia/Shanghai or UTC."
        ) from None


@dataclass(frozen=True, slots=True)
class DigestSchedule:
    """A daily digest at a local time on some weekdays, in one time zone (pure)."""

    hour: int
    minute: int
    days: frozenset[int]
    tz: tzinfo
    tz_name: str

    @classmethod
    def build(cls, hhmm: str, timezone: str, days: str | None) -> DigestSchedule:
        """Validate a stored or typed schedule; InputError says what is wrong."""
        m = _HHMM.match(hhmm or "")
        if m is None:
            raise InputError(f"{hhmm!r} is not a time of day (HH:MM, 24-hour)")
        wanted = weekdays(days)
        if not wanted:
            raise InputError("a digest needs at least one day")
        return cls(int(m.group(1)), int(m.group(2)), wanted, parse_timezone(timezone), timezone)

    def slot_on(self, day: date) -> datetime | None:
        """The slot on local calendar day ``day`` (None if the digest is off that day),
        in UTC. A repeated local time is its first instant; a skipped one moves past the
        gap. (UTC, because an aware datetime inside a repeated hour never compares equal
        to one in another zone: PEP 495.)"""
        if day.weekday() not in self.days:
            return None
        local = datetime.combine(day, time(self.hour, self.minute), tzinfo=self.tz)  # fold=0
        return local.astimezone(UTC)

    def next_after(self, after: datetime) -> datetime | None:
        """The first slot strictly after ``after`` (always later: progress guaranteed)."""
        start = after.astimezone(self.tz).date() - timedelta(days=1)
        for offset in range(_SEARCH_DAYS + 1):
            slot = self.slot_on(start + timedelta(days=offset))
            if slot is not None and slot > after:
                return slot
        return None

    def latest_at(self, now: datetime, *, lookback_days: int = 8) -> datetime | None:
        """The latest slot at or before ``now``, within ``lookback_days``."""
        today = now.astimezone(self.tz).date() + timedelta(days=1)
        floor = now - timedelta(days=lookback_days)
        for offset in range(lookback_days + 2):
            slot = self.slot_on(today - timedelta(days=offset))
            if slot is not None and slot <= now:
                return slot if slot >= floor else None
        return None


class DigestTrigger(BaseTrigger):
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


def channel_schedule(channel: ChannelRecord) -> DigestSchedule | None:
    """The channel's digest schedule (None: off). InputError if what is stored is bad."""
    if not channel.digest_time:
        return None
    return DigestSchedule.build(channel.digest_time, channel.timezone, channel.digest_days)


def digest_trigger(channel: ChannelRecord) -> DigestTrigger | None:
    """The channel's digest trigger in its own timezone (None: off). InputError if the
    stored schedule cannot be used."""
    schedule = channel_schedule(channel)
    return DigestTrigger(schedule) if schedule is not None else None


def next_slot(channel: ChannelRecord, after: datetime) -> datetime | None:
    """The first digest slot strictly after ``after`` (aware, UTC)."""
    schedule = channel_schedule(channel)
    return schedule.next_after(after) if schedule is not None else None


def previous_slot(
    channel: ChannelRecord, now: datetime, *, lookback_days: int = 8
) -> datetime | None:
    """The latest digest slot at or before ``now`` within ``lookback_days``."""
    schedule = channel_schedule(channel)
    return schedule.latest_at(now, lookback_days=lookback_days) if schedule else None


def slot_key(slot: datetime, timezone: str) -> str:
    """The delivery key of a scheduled digest slot: the channel's LOCAL date and time
    and its zone, ``digest:2023-11-05T01:30@America/New_York`` (``Z`` for UTC:
    ``digest:2023-11-05T08:00Z``, the key earlier versions used for UTC channels). Both
    instants of a repeated local time share it, so a channel gets at most one digest
    per local date and time."""
    local = slot.astimezone(parse_timezone(timezone))
    zone_mark = "Z" if timezone in ("UTC", "Etc/UTC") else f"@{timezone}"
    return f"digest:{local:%Y-%m-%dT%H:%M}{zone_mark}"


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
                log.warning("stopping: cancelling job %s (still running after %g s)",
                            task.get_name(), wait)
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
            log.error("channel %s: digest schedule %r %r days %r cannot be used: %s; "
                      "no scheduled digest until it is set again (/digest schedule)",
                      channel.id, channel.digest_time, channel.timezone, channel.digest_days,
                      err)
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
