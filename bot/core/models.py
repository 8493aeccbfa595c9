"""Typed data that travels between the pipeline stages.

fetch -> :class:`FetchResult` -> parse -> :class:`Item` -> dedupe/store -> :class:`StoredItem`
-> match -> :class:`Match` -> stories/digest.

These are plain frozen dataclasses: no I/O, no platform types.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class EntryKind(StrEnum):
    ACTOR = "actor"
    TOPIC = "topic"


class Field(StrEnum):
    TITLE = "title"
    SUMMARY = "summary"


class AlertMode(StrEnum):
    DIGEST = "digest"
    INSTANT = "instant"


@dataclass(frozen=True, slots=True)
class FeedSource:
    """A feed as configured (config/feeds.toml or /feeds add)."""

    url: str
    name: str
    lang: str | None = None


@dataclass(frozen=True, slots=True)
class FetchResult:
    """What the fetcher returns for one feed. Exactly one of body / not_modified / error."""

    url: str  # the URL asked for
    final_url: str  # after redirects
    status: int | None
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    etag: str | None = None
    last_modified: str | None = None
    not_modified: bool = False
    error: str | None = None
    retry_after: float | None = None  # seconds, from Retry-After
    elapsed: float = 0.0
    permanent_redirect: bool = False  # every hop was 301/308: final_url is the new address


@dataclass(frozen=True, slots=True)
class Item:
    """A feed entry after parsing. Title and summary are as the feed gave them (may hold
    HTML and entities); use ``bot.core.text.plain`` for display and matching."""

    guid: str  # entry id, else link, else a hash of title+summary
    title: str
    summary: str
    link: str | None
    canonical_link: str | None  # tracking params and fragment stripped; None if no link
    published: datetime | None  # timezone-aware, UTC
    feed_url: str
    source: str  # outlet display name (the feed's configured name)
    lang: str | None = None


@dataclass(frozen=True, slots=True)
class StoredItem:
    """An item with its database identity."""

    id: int
    feed_id: int
    item: Item
    fetched_at: datetime  # aware UTC

    @property
    def when(self) -> datetime:
        """The time shown, ranked and windowed on: published if known and not after we
        fetched it, else when we fetched it."""
        published = self.item.published
        return (
            published
            if published is not None and published <= self.fetched_at
            else (self.fetched_at)
        )


@dataclass(frozen=True, slots=True)
class Match:
    """One watchlist entry matched by one item: the first alias that counted, and where."""

    entry_id: str
    alias: str
    field: Field


@dataclass(frozen=True, slots=True)
class FeedHealth:
    """A feed's state as shown by /feeds list and /status."""

    id: int
    url: str
    name: str
    last_success_at: datetime | None
    last_error: str | None
    last_error_at: datetime | None
    consecutive_failures: int
    next_poll_at: datetime | None
    item_count: int = 0

    @property
    def failing(self) -> bool:
        return self.consecutive_failures > 0
