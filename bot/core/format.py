"""Small text helpers shared by the use cases' replies."""

from __future__ import annotations

from datetime import datetime

from bot.core.models import StoredItem
from bot.core.text import plain, truncate


def ago(when: datetime | None, now: datetime) -> str:
    """How long before (or after) ``now``: "now", "42 s ago", "5 min ago", "in 3 h",
    "12 days ago"; "never" for None."""
    if when is None:
        return "never"
    seconds = (now - when).total_seconds()
    future = seconds < 0
    seconds = abs(seconds)
    if seconds < 90:
        text = f"{max(1, round(seconds))} s" if seconds >= 1 else "now"
    elif seconds < 90 * 60:
        text = f"{round(seconds / 60)} min"
    elif seconds < 36 * 3600:
        text = f"{round(seconds / 3600)} h"
    else:
        text = f"{round(seconds / 86400)} days"
    if text == "now":
        return text
    return f"in {text}" if future else f"{text} ago"


def item_title(stored: StoredItem) -> str:
    """A stored item's title as one plain line (at most 120 characters)."""
    return truncate(plain(stored.item.title) or "(untitled)", 120)
