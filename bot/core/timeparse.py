"""Time zones and times of day: the one validator of each for the whole bot.

Settings (``digest.default_timezone``, ``digest.default_time``), ``/digest`` input,
stored channel schedules and digest rendering all check their values here, so a value
one of them accepts the others accept too, and the message for a bad one reads the
same everywhere. Errors are :class:`InputError` with a sentence fit for a user.
"""

from __future__ import annotations

import re
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.errors import InputError

#: a 24-hour time of day: "8:30", "08:30", "0830", "8h30", "8.30"
_TIME_OF_DAY = re.compile(r"^([01]?\d|2[0-3])(?::|h|\.)?([0-5]\d)$")


def zone(name: str) -> ZoneInfo:
    """The IANA time zone called ``name``; :class:`InputError` if there is none."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        # OSError: a tzdata directory such as "America" (IsADirectoryError)
        raise InputError(
            f"Unknown timezone {name!r}: use an IANA name like Europe/Berlin or Asia/Shanghai."
        ) from None


def check_timezone(name: str) -> str:
    """``name`` without surrounding blanks, if it is an IANA time zone;
    :class:`InputError` otherwise."""
    name = name.strip()
    zone(name)
    return name


def check_time_of_day(text: str) -> str:
    """A 24-hour time of day as ``"HH:MM"``: ``"8:30"``, ``"08:30"``, ``"0830"``,
    ``"8h30"`` -> ``"08:30"``; :class:`InputError` otherwise."""
    hour, minute = hour_minute(text)
    return f"{hour:02d}:{minute:02d}"


def hour_minute(text: str) -> tuple[int, int]:
    """The hour and minute of a time of day (the forms :func:`check_time_of_day`
    takes); :class:`InputError` otherwise."""
    m = _TIME_OF_DAY.match(text.strip().lower())
    if m is None:
        raise InputError(f"{text!r} is not a time of day: use HH:MM (24-hour), e.g. 08:30.")
    return int(m.group(1)), int(m.group(2))


__all__ = ["check_time_of_day", "check_timezone", "hour_minute", "zone"]
