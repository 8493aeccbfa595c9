"""The storage ports: the records the core reads and writes, and the Protocols it
needs from a store, one per domain. ``bot.storage.sql.SqlStorage`` implements them all
on SQLAlchemy 2 async (SQLite file by default, PostgreSQL from a URL); the core and the
pipeline depend on these Protocols only, never on SQLAlchemy or on ``bot.storage``.

- :class:`FeedStore`: feeds, their fetch records and which are due.
- :class:`ItemStore`: items, their matches and sightings, full-text search.
- :class:`ChannelStore`: channels, their digest schedules and own watchlist entries.
- :class:`DeliveryStore`: the outbox of digests and instant alerts.
- :class:`Storage`: all four, opened and closed by the composition root.

Design notes
- Feeds are global rows; ``origin`` is ``config`` (from config/feeds.toml, synced at
  start) or ``chat`` (added by a channel). A channel's feeds = config feeds it has not
  removed + chat feeds it added (``channel_feeds`` overrides).
- A channel's watchlist = the default watchlist minus the ids it disabled, plus its own
  entries (stored as JSON dicts, the same form as a ``[[entry]]`` in watchlist.toml); an
  own entry with a default id replaces that default entry for the channel.
- Matches carry a ``scope``: ``None`` for default-watchlist entries (computed once per
  item for everyone), or a channel id for a channel's own entries.
- An item is stored once, from the first feed that carried it (feeds of one poll cycle
  store in feed-id order); every other feed whose copy was a duplicate is recorded as a
  :class:`Sighting` of it, so that its outlet is credited (``MatchedItem.sightings``).
- Deliveries (digests, instant alerts) are keyed uniquely per channel so a key is
  delivered at most once; a row is ``pending`` until the adapter confirms it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

from bot.core.models import AlertMode, FeedHealth, FeedSource, Item, Match, StoredItem
from bot.core.options import DEFAULT_MAX_ITEM_AGE


class FeedOrigin(StrEnum):
    """Where a feed comes from."""

    CONFIG = "config"  # config/feeds.toml, synced at start
    CHAT = "chat"  # added by a channel (/feeds add, /feeds import)


class GroupBy(StrEnum):
    """How a channel's digest groups its stories."""

    ENTRY = "entry"  # one group per tracked entry
    STORY = "story"  # one ranked list; entries are tags


class DeliveryKind(StrEnum):
    DIGEST = "digest"
    ALERT = "alert"


class DeliveryStatus(StrEnum):
    PENDING = "pending"  # created, not yet confirmed by the platform
    SENT = "sent"
    FAILED = "failed"  # given up (permanent error)


@dataclass(frozen=True, slots=True)
class FeedState:
    """What the poller needs to fetch a feed politely."""

    id: int
    url: str
    name: str
    lang: str | None
    etag: str | None
    last_modified: str | None
    content_hash: str | None
    consecutive_failures: int
    next_poll_at: datetime | None
    origin: FeedOrigin


@dataclass(frozen=True, slots=True)
class ChannelRecord:
    id: int
    platform: str  # "console", "discord", "slack"
    external_id: str  # platform channel id
    guild_id: str | None
    name: str | None
    timezone: str  # IANA name
    digest_time: str | None  # "HH:MM" or None when no schedule
    digest_days: str | None  # cron day_of_week, e.g. "mon-fri"; None = every day
    last_digest_at: datetime | None
    paused_reason: str | None  # set when the platform refused delivery (403/404)
    group_by: GroupBy = GroupBy.ENTRY


@dataclass(frozen=True, slots=True)
class ChannelEntryRecord:
    """A channel's own watchlist entry (JSON definition) and its delivery mode."""

    entry_id: str
    definition: dict[str, Any]
    mode: AlertMode


@dataclass(frozen=True, slots=True)
class Sighting:
    """Another feed that carried a stored item: its copy was a duplicate (same canonical
    link or global guid), so it was not stored, but its outlet counts for the story."""

    feed_id: int
    source: str  # the outlet's name, as on the copy (``Item.source``)
    link: str | None  # the copy's link (may carry an aggregator's tracking parameters)
    seen_at: datetime  # aware UTC: the fetch that first saw the copy


@dataclass(frozen=True, slots=True)
class MatchedItem:
    """A stored item with the matches that put it in a channel's view."""

    stored: StoredItem
    matches: tuple[Match, ...]
    #: other feeds that carried the item, by first seen (then by when recorded)
    sightings: tuple[Sighting, ...] = ()


@dataclass(frozen=True, slots=True)
class Delivery:
    id: int
    channel_id: int
    kind: DeliveryKind
    key: str  # unique per channel, e.g. "digest:2023-11-14T09:00+08:00"
    payload: dict[str, Any]  # what to send (a serialised platform-neutral model)
    status: DeliveryStatus
    nonce: str  # stable across retries (Discord enforce_nonce)
    created_at: datetime
    sent_at: datetime | None = None
    attempts: int = 0
    last_error: str | None = None
    message_ids: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class SearchHit:
    stored: StoredItem
    rank: float


class FeedStore(Protocol):
    """Feeds: the configured and chat-added ones, their fetch results, which are due."""

    async def sync_config_feeds(self, sources: Sequence[FeedSource]) -> None:
        """Make the ``config`` feeds exactly ``sources`` (add new, rename, retire gone
        ones); keeps HTTP validators and history of feeds that stay."""

    async def add_feed(self, source: FeedSource, *, channel_id: int | None) -> FeedState:
        """Add a ``chat`` feed (or reuse the row if the URL exists) and subscribe the
        channel. Raises InputError if the channel already has it."""

    async def remove_feed(self, channel_id: int, feed_id: int) -> None:
        """Unsubscribe the channel (a config feed is marked removed for it)."""

    async def channel_feeds(self, channel_id: int) -> list[FeedHealth]: ...

    async def all_feeds(self) -> list[FeedHealth]: ...

    async def feed_by_url(self, url: str) -> FeedHealth | None:
        """The active feed (one of :meth:`all_feeds`) whose URL is exactly ``url``."""

    async def feed_states(self) -> list[FeedState]:
        """Every active feed (subscribed by someone or from config)."""

    async def due_feeds(self, now: datetime) -> list[FeedState]:
        """Active feeds whose next_poll_at is None or <= now."""

    async def record_fetch_success(
        self,
        feed_id: int,
        *,
        at: datetime,
        next_poll_at: datetime,
        etag: str | None,
        last_modified: str | None,
        content_hash: str | None,
        title: str | None = None,
    ) -> None: ...

    async def record_fetch_failure(
        self, feed_id: int, *, at: datetime, next_poll_at: datetime, error: str
    ) -> None:
        """Increments consecutive_failures; keeps validators."""

    async def failures_between(self, start: datetime, end: datetime) -> list[FeedHealth]:
        """Feeds with a failure recorded in [start, end) (for digest headers)."""


class ItemStore(Protocol):
    """Items: stored once across feeds, with their matches and sightings; search."""

    async def insert_items(
        self, feed_id: int, items: Sequence[tuple[Item, Sequence[str]]], *, fetched_at: datetime
    ) -> list[StoredItem]:
        """Insert each (item, dedupe_keys) unless any of its keys is already stored
        (or was seen earlier in this batch). Returns only the new items, in order.

        A duplicate of an item stored from *another* feed is recorded as a sighting of
        that item by ``feed_id`` (once per item and feed; see :meth:`sightings`)."""

    async def add_matches(
        self, item_id: int, matches: Sequence[Match], *, scope: int | None = None
    ) -> None:
        """Record matches for an item (idempotent per (item, scope, entry))."""

    async def add_matches_bulk(
        self, batch: Sequence[tuple[int, Sequence[Match]]], *, scope: int | None = None
    ) -> None:
        """:meth:`add_matches` for many items (item_id, matches) in one transaction."""

    async def sightings(self, item_ids: Sequence[int]) -> dict[int, tuple[Sighting, ...]]:
        """The sightings of these items (item id -> by seen_at, then recording order);
        items without any are left out."""

    async def items_between(self, start: datetime, end: datetime) -> list[StoredItem]:
        """Items fetched (or published) in [start, end), newest first (for re-matching)."""

    async def matched_items(
        self,
        channel_id: int,
        start: datetime,
        end: datetime,
        *,
        entry_id: str | None = None,
        max_age: timedelta | None = DEFAULT_MAX_ITEM_AGE,
        late: bool = False,
    ) -> list[MatchedItem]:
        """Items in the channel's view (its feeds, its effective watchlist) whose time
        (:attr:`StoredItem.when`: published, else fetched) is in [start, end), with
        their matches (scope None minus the channel's disabled ids, plus scope ==
        channel_id) and sightings. Backlog is left out: an item published before its
        feed was added, or more than ``max_age`` before it was fetched (None: keep).
        ``late``: also items fetched in [start, end) but published before ``start``
        (a digest after a digest: nothing that arrived late is missed)."""

    async def search(
        self,
        query: str,
        *,
        since: datetime | None,
        limit: int = 10,
        fetched_since: datetime | None = None,
        channel_id: int | None = None,
    ) -> list[SearchHit]:
        """Full-text search over titles and summaries, best first (SQLite FTS5 /
        PostgreSQL tsvector); ``"quoted words"`` are a phrase. ``since`` filters on the
        published (else fetched) time, ``fetched_since`` on the fetched time (as
        ``matched_items``), ``channel_id`` to the items of the channel's feeds (in the
        query: the best ``limit`` of the channel's own). Raises InputError on a query
        the engine cannot parse."""

    async def count_items_since(self, since: datetime) -> int: ...


class ChannelStore(Protocol):
    """Channels: their digest schedule and their own watchlist entries."""

    async def get_channel(
        self,
        platform: str,
        external_id: str,
        *,
        guild_id: str | None = None,
        name: str | None = None,
        default_tz: str = "UTC",
    ) -> ChannelRecord:
        """Get or create the channel row."""

    async def channel_by_id(self, channel_id: int) -> ChannelRecord: ...

    async def all_channels(self, platform: str | None = None) -> list[ChannelRecord]: ...

    async def set_schedule(
        self, channel_id: int, *, time: str | None, timezone: str | None, days: str | None
    ) -> ChannelRecord:
        """time None clears the schedule."""

    async def set_group_by(self, channel_id: int, group_by: str) -> ChannelRecord:
        """``entry`` or ``story`` (:class:`GroupBy`); anything else raises InputError."""

    async def set_paused(self, channel_id: int, reason: str | None) -> None: ...

    async def set_last_digest_at(self, channel_id: int, at: datetime) -> None: ...

    async def channel_entries(self, channel_id: int) -> list[ChannelEntryRecord]: ...

    async def disabled_entries(self, channel_id: int) -> set[str]: ...

    async def put_channel_entry(
        self, channel_id: int, entry_id: str, definition: dict[str, Any], mode: str
    ) -> None:
        """``mode``: ``digest`` or ``instant`` (:class:`AlertMode`); anything else
        raises InputError."""

    async def remove_channel_entry(self, channel_id: int, entry_id: str) -> None:
        """Removes an own entry; for a default id, records it as disabled."""

    async def enable_default_entry(self, channel_id: int, entry_id: str) -> None: ...


class DeliveryStore(Protocol):
    """The outbox: digests and instant alerts, each delivered at most once."""

    async def create_delivery(
        self,
        channel_id: int,
        kind: str,
        key: str,
        payload: dict[str, Any],
        *,
        at: datetime,
        item_ids: Iterable[int] = (),
    ) -> Delivery | None:
        """Create a pending delivery of ``kind`` (:class:`DeliveryKind`); None if this
        (channel, key) already exists. ``item_ids``: the stored items it carries
        (``alerted`` answers from them)."""

    async def get_delivery(self, channel_id: int, key: str) -> Delivery | None:
        """The delivery with this key in the channel, if any."""

    async def mark_sent(
        self, delivery_id: int, *, at: datetime, message_ids: Sequence[str]
    ) -> None: ...

    async def mark_failed(self, delivery_id: int, *, error: str, permanent: bool) -> None:
        """Record an attempt's error; permanent=True sets status 'failed'."""

    async def record_progress(self, delivery_id: int, message_ids: Sequence[str]) -> None:
        """The message ids of the parts of a multi-message delivery confirmed so far
        (in order); it stays ``pending``, and a retry skips those parts."""

    async def pending_deliveries(self, channel_id: int | None = None) -> list[Delivery]: ...

    async def last_sent_at(self, channel_id: int, kind: str) -> datetime | None:
        """When the channel's latest delivery of ``kind`` was sent; None if never."""
        ...

    async def alerted(self, channel_id: int, item_ids: Sequence[int]) -> set[int]:
        """Which of these items already produced an instant alert in the channel: items
        passed as ``item_ids`` to a ``create_delivery`` of kind ``alert``."""


class Storage(FeedStore, ItemStore, ChannelStore, DeliveryStore, Protocol):
    """Every store in one: what the composition root opens, hands out and closes."""

    async def open(self) -> None:
        """Create/upgrade the schema (Alembic migrations) and connect."""

    async def close(self) -> None: ...
