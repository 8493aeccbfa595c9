"""What the use cases need to know of the configuration, and nothing more.

The core never reads ``bot.config``: the composition root (``bot.app``) builds a
:class:`ServiceOptions` from the settings it loaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

#: the default ``digest.max_item_age``: older news is backlog, never "new"
DEFAULT_MAX_ITEM_AGE = timedelta(hours=48)


@dataclass(frozen=True, slots=True)
class ServiceOptions:
    #: the time zone a new channel starts with
    default_timezone: str = "UTC"
    #: the time /digest schedule uses when none is given (HH:MM)
    default_time: str = "08:00"
    #: how a new channel's digests are grouped: "entry" or "story"
    group_by: str = "entry"
    #: the most stories a digest or brief lists
    max_stories: int = 40
    #: how far back /brief (and /test entry:) look by default
    brief_hours: int = 24
    #: how often feeds are polled (told to whoever adds a feed)
    poll_interval_minutes: float = 15
    #: an item published longer than this before it was fetched (or before its feed
    #: was added) is backlog, never new; None turns the rule off
    max_item_age: timedelta | None = DEFAULT_MAX_ITEM_AGE
    #: the language a story's headline is picked in
    language: str = "en"
