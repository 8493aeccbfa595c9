"""Ranking stories: outlets and tracked entries, fading with the age of the latest report."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from bot.core.stories import Story

#: how fast a story's weight fades with the age of its latest report (halves in two days)
RANK_HALF_LIFE = timedelta(hours=48)
#: what a tracked entry weighs in a story's rank, against one outlet
ENTRY_WEIGHT = 0.5


def rank_score(story: Story, ref: datetime, half_life: timedelta = RANK_HALF_LIFE) -> float:
    """(outlets + :data:`ENTRY_WEIGHT` x tracked entries), halved for every
    ``half_life`` its latest report is older than ``ref``: a story still reported now
    outranks a bigger one that stopped a month ago (the summit over its preview)."""
    age = max((ref - story.last).total_seconds(), 0.0)
    size = len(story.outlets) + ENTRY_WEIGHT * len(story.matches)
    decay: float = 0.5 ** (age / half_life.total_seconds())
    return size * decay


def rank(
    stories: Iterable[Story],
    *,
    now: datetime | None = None,
    half_life: timedelta = RANK_HALF_LIFE,
) -> list[Story]:
    """Best first by :func:`rank_score` against ``now`` (default: the latest report of
    any story), then newer (latest item), then id. Outlets that only carried a
    duplicate copy count too."""
    stories = list(stories)
    if not stories:
        return []
    ref = now if now is not None else max(s.last for s in stories)
    return sorted(
        stories,
        key=lambda s: (-round(rank_score(s, ref, half_life), 9), -s.last.timestamp(), s.id),
    )
