"""What a poll cycle hands storage in bulk: new items with everything the parser
workers computed for them, and the fetch records of many feeds at once.

Pure records and the storage port that takes them (implemented by
:class:`~bot.storage.sql.SqlStorage`); the poller (``bot.feeds.poll``) fills them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from bot.core.models import Item, Match
from bot.core.ports import MatchedItem, Storage


@dataclass(frozen=True, slots=True)
class ItemRow:
    """One parsed item as the parser worker prepared it: its dedupe keys, its plain-text
    title and summary (for search), and its default-watchlist matches (None: not
    matched yet; the poller matches it before storing)."""

    item: Item
    keys: Sequence[str]
    title_plain: str
    summary_plain: str
    matches: tuple[Match, ...] | None = None


@dataclass(frozen=True, slots=True)
class FetchSuccess:
    """A successful fetch of one feed (what ``record_fetch_success`` takes)."""

    feed_id: int
    at: datetime
    next_poll_at: datetime
    etag: str | None
    last_modified: str | None
    content_hash: str | None
    title: str | None = None


@dataclass(frozen=True, slots=True)
class FeedRows:
    """Some of one feed's parsed items, in document order (a part of a batch)."""

    feed_id: int
    rows: Sequence[ItemRow]


class CycleStore(Protocol):
    async def store_batch(
        self,
        parts: Sequence[FeedRows],
        *,
        fetched_at: datetime,
        records: Sequence[FetchSuccess] = (),
    ) -> list[list[MatchedItem]]:
        """Many feeds' items and fetch records in ONE transaction:
        :meth:`~bot.core.ports.ItemStore.insert_items` of each part in order (a copy of
        an item an earlier part stored becomes a sighting of it), the new items'
        default matches (:meth:`~bot.core.ports.ItemStore.add_matches_bulk`), and
        :meth:`record_fetch_successes` of ``records``. Returns each part's new items,
        in order. Every row must be matched (``matches`` not None)."""

    async def record_fetch_successes(self, records: Sequence[FetchSuccess]) -> None:
        """:meth:`~bot.core.ports.FeedStore.record_fetch_success` for many feeds in one
        transaction (a feed deleted meanwhile is skipped)."""


class CycleStorage(Storage, CycleStore, Protocol):
    """The storage a poll cycle needs."""


__all__ = ["CycleStorage", "CycleStore", "FeedRows", "FetchSuccess", "ItemRow"]
