"""Digest schedules, pure: days and times as typed, slots across time zones and daylight
saving (one slot per local day), slot keys."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import TypeVar
from zoneinfo import ZoneInfo

import pytest

from bot.core.ports import ChannelRecord
from bot.core.schedule import (
    DigestSchedule,
    is_hhmm,
    next_slot,
    parse_days,
    previous_slot,
    slot_key,
    weekdays,
)
from bot.core.timeparse import check_time_of_day as parse_time_of_day
from bot.errors import InputError

T = TypeVar("T")


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
    assert slot.astimezone(NY).date() == date(2024, 3, 10)
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


def test_slot_key_is_the_channels_local_date_and_time() -> None:
    a = datetime(2023, 11, 15, 8, 0, tzinfo=SH)
    key = "digest:2023-11-15T08:00@Asia/Shanghai"
    assert slot_key(a, "Asia/Shanghai") == slot_key(a.astimezone(UTC), "Asia/Shanghai") == key
    # both instants of a repeated local time (New York, 5 Nov 2023) share one key
    first = datetime(2023, 11, 5, 5, 30, tzinfo=UTC)
    second = datetime(2023, 11, 5, 6, 30, tzinfo=UTC)
    assert slot_key(first, "America/New_York") == slot_key(second, "America/New_York")
    assert slot_key(first, "America/New_York") == "digest:2023-11-05T01:30@America/New_York"
    assert slot_key(first, "UTC") == "digest:2023-11-05T05:30Z"


def finishes_fast(fn: Callable[[], T], seconds: float = 5.0) -> T:
    """Run ``fn`` in a daemon thread: an endless loop fails the test instead of
    freezing the suite (the thread is abandoned, and dies with the process)."""
    result: list[T] = []
    errors: list[BaseException] = []

    def target() -> None:
        try:
            result.append(fn())
        except BaseException as err:  # re-raised below
            errors.append(err)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"did not finish within {seconds} s (endless loop?)"
    if errors:
        raise errors[0]
    return result[0]


def utc(when: datetime | None) -> datetime | None:
    return when.astimezone(UTC) if when is not None else None


NY_FIRST = datetime(2023, 11, 5, 5, 30, tzinfo=UTC)  # 01:30 EDT, Sun 5 Nov 2023


NY_SECOND = datetime(2023, 11, 5, 6, 30, tzinfo=UTC)  # 01:30 EST, an hour later


def test_repeated_hour_is_one_slot_and_slot_search_always_progresses() -> None:
    ch = channel("01:30", "America/New_York")
    # (compared in UTC: an aware time in a repeated hour never equals one in another
    # zone, PEP 495)
    slot = finishes_fast(lambda: next_slot(ch, datetime(2023, 11, 4, 12, 0, tzinfo=UTC)))
    assert utc(slot) == NY_FIRST
    # the next slot is the next day's, not the second 01:30 of the same day
    following = finishes_fast(lambda: next_slot(ch, NY_FIRST))
    assert utc(following) == datetime(2023, 11, 6, 6, 30, tzinfo=UTC)
    # at and after the second 01:30 the latest slot is still the day's one slot
    for now in (NY_SECOND, NY_SECOND + timedelta(minutes=15), NY_SECOND + timedelta(hours=3)):
        assert utc(finishes_fast(lambda now=now: previous_slot(ch, now))) == NY_FIRST


def test_skipped_hour_fires_once_that_day_after_the_gap() -> None:
    # 02:30 does not exist in New York on 10 Mar 2024 (02:00 -> 03:00)
    ch = channel("02:30", "America/New_York")
    slot = utc(finishes_fast(lambda: next_slot(ch, datetime(2024, 3, 10, 5, 0, tzinfo=UTC))))
    assert slot == datetime(2024, 3, 10, 7, 30, tzinfo=UTC)  # 03:30 EDT, just after the gap
    assert utc(previous_slot(ch, datetime(2024, 3, 10, 12, 0, tzinfo=UTC))) == slot
    assert utc(next_slot(ch, slot)) == datetime(2024, 3, 11, 6, 30, tzinfo=UTC)  # 02:30 EDT
    assert slot_key(slot, "America/New_York") != slot_key(
        datetime(2024, 3, 11, 6, 30, tzinfo=UTC), "America/New_York"
    )


def test_wrapped_day_range() -> None:
    assert parse_days("fri-mon") == "fri,sat,sun,mon"
    assert parse_days("Friday-Monday") == "fri,sat,sun,mon"
    assert parse_days("mon-fri") == "mon-fri"
    assert parse_days("mon-sun") is None  # every day
    assert weekdays("fri,sat,sun,mon") == weekdays("fri-mon") == frozenset({4, 5, 6, 0})
    ch = channel("08:00", "UTC", days=parse_days("fri-mon"))
    tuesday = datetime(2023, 11, 14, 9, 0, tzinfo=UTC)
    assert next_slot(ch, tuesday) == datetime(2023, 11, 17, 8, 0, tzinfo=UTC)  # Friday
    for bad in ("fri-", "funday", "mon-fri-sat"):
        with pytest.raises(InputError):
            parse_days(bad)


def test_time_and_day_parsing() -> None:
    assert parse_time_of_day("0830") == "08:30"
    assert parse_time_of_day("23:59") == "23:59"
    assert parse_days("Monday-Friday") == "mon-fri"
    assert parse_days("mon, wed,fri") == "mon,wed,fri"
    assert parse_days("weekends") == "sat,sun"
    assert parse_days("daily") is None
    with pytest.raises(InputError):
        parse_days("funday")


def test_stored_times_are_exactly_hh_mm() -> None:
    assert is_hhmm("08:30")
    for bad in ("8:30", "0830", "24:00", "08:60", " 08:30", ""):
        assert not is_hhmm(bad)
        with pytest.raises(InputError, match="is not a time of day"):
            DigestSchedule.build(bad, "UTC", None)
    schedule = DigestSchedule.build("07:05", "UTC", "mon-fri")
    assert (schedule.hour, schedule.minute, schedule.days) == (7, 5, frozenset(range(5)))
