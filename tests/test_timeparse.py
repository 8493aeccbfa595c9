"""The one time-zone and the one time-of-day validator (bot/core/timeparse.py): what
settings, /digest input, stored schedules and digests all accept, and the one message
for a value they refuse."""

from __future__ import annotations

import pytest

from bot.core.timeparse import check_time_of_day, check_timezone, hour_minute, zone
from bot.errors import InputError


def test_zone_is_the_iana_zone() -> None:
    assert zone("Asia/Shanghai").key == "Asia/Shanghai"
    assert zone("UTC").key == "UTC"


@pytest.mark.parametrize(
    "name",
    [
        "Mars/Olympus",
        "",
        "America",  # a tzdata directory: IsADirectoryError from zoneinfo, not a crash
        "../../etc/passwd",
        "Europe/Berlin/",
        "a\x00b",
    ],
)
def test_unknown_zones_are_one_input_error(name: str) -> None:
    with pytest.raises(InputError) as info:
        zone(name)
    assert str(info.value) == (
        f"Unknown timezone {name!r}: use an IANA name like Europe/Berlin or Asia/Shanghai."
    )


def test_check_timezone_strips_blanks() -> None:
    assert check_timezone("  Europe/Berlin ") == "Europe/Berlin"
    with pytest.raises(InputError, match="Unknown timezone 'Europe/Berlinn'"):
        check_timezone("Europe/Berlinn")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("08:30", "08:30"),
        ("8:30", "08:30"),
        ("0830", "08:30"),
        ("8h30", "08:30"),
        ("8H30", "08:30"),
        ("8.30", "08:30"),
        (" 23:59 ", "23:59"),
        ("00:00", "00:00"),
    ],
)
def test_time_of_day_forms_normalise_to_hh_mm(text: str, expected: str) -> None:
    assert check_time_of_day(text) == expected


@pytest.mark.parametrize("text", ["24:00", "25:00", "8 am", "08:60", "", "8", "08:30:00"])
def test_bad_times_of_day_are_one_input_error(text: str) -> None:
    with pytest.raises(InputError) as info:
        check_time_of_day(text)
    assert str(info.value) == f"{text!r} is not a time of day: use HH:MM (24-hour), e.g. 08:30."


def test_hour_minute() -> None:
    assert hour_minute("7:05") == (7, 5)
    assert hour_minute("23:59") == (23, 59)
    with pytest.raises(InputError, match="not a time of day"):
        hour_minute("12:5")
