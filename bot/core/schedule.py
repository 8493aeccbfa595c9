"""Digest schedules, pure: days and times as typed, one slot per local day, slot keys.

A channel has at most ONE digest slot per local calendar day, at its local HH:MM
(:class:`DigestSchedule`). That is what a user means by "08:00 every weekday", and it
keeps daylight-saving changes sane:

- in a repeated hour (autumn), the slot is the first of the two instants; the local
  date + HH:MM is the same for both, so :func:`slot_key` makes it deliverable once;
- in a skipped hour (spring), the slot moves past the gap (02:30 becomes 03:30) and
  still fires that day.

A slot's delivery key is ``digest:<local date>T<HH:MM>@<tz>`` (``Z`` for UTC;
:func:`slot_key`, the one key function: scheduled digests are delivered under it), so a
slot is delivered at most once however often the job runs (restart, catch-up, coalesce).

No I/O and no scheduler here: ``bot.scheduling`` turns these schedules into APScheduler
triggers; the digest use cases validate ``/digest schedule`` with them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo

from bot.core.ports import ChannelRecord
from bot.core.timeparse import check_time_of_day, zone
from bot.errors import InputError

# -- days and times (the digest use cases validate /digest schedule with these) -------

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_FULL_DAYS = {
    "monday": "mon",
    "tuesday": "tue",
    "tues": "tue",
    "wednesday": "wed",
    "thursday": "thu",
    "thur": "thu",
    "thurs": "thu",
    "friday": "fri",
    "saturday": "sat",
    "sunday": "sun",
}
_DAY_ALIASES = {
    "weekdays": "mon-fri",
    "workdays": "mon-fri",
    "weekends": "sat,sun",
    "weekend": "sat,sun",
    "daily": "",
    "everyday": "",
    "every day": "",
    "all": "",
    "*": "",
}
#: far enough to find the next (or previous) slot of any non-empty set of weekdays
_SEARCH_DAYS = 9


def is_hhmm(value: str) -> bool:
    """True for a time of day in the stored form, exactly ``HH:MM`` (24-hour)."""
    try:
        return check_time_of_day(value) == value
    except InputError:
        return False


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
        if not is_hhmm(hhmm or ""):
            raise InputError(f"{hhmm!r} is not a time of day (HH:MM, 24-hour)")
        wanted = weekdays(days)
        if not wanted:
            raise InputError("a digest needs at least one day")
        hour, minute = hhmm.split(":")
        return cls(int(hour), int(minute), wanted, zone(timezone), timezone)

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


def channel_schedule(channel: ChannelRecord) -> DigestSchedule | None:
    """The channel's digest schedule (None: off). InputError if what is stored is bad."""
    if not channel.digest_time:
        return None
    return DigestSchedule.build(channel.digest_time, channel.timezone, channel.digest_days)


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
    local = slot.astimezone(zone(timezone))
    zone_mark = "Z" if timezone in ("UTC", "Etc/UTC") else f"@{timezone}"
    return f"digest:{local:%Y-%m-%dT%H:%M}{zone_mark}"
