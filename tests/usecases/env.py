"""Shared by the use-case tests: callers, feeds, and items stored as the poller would
store them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from typing_extensions import override

from bot.core.delivery import Sink
from bot.core.matching import compile_watchlist
from bot.core.models import FeedSource, Item, StoredItem
from bot.core.ports import ChannelRecord
from bot.core.replies import ChannelContext
from bot.core.watchlist import slugify
from bot.feeds.dedupe import keys_for_batch
from bot.storage.sql import SqlStorage
from bot.watchlist_files import default_watchlist

NOW = datetime(2023, 11, 15, 12, 0, tzinfo=UTC)
WIRE = FeedSource("https://wire.example/rss", "Wire")
OTHER = FeedSource("https://other.example/rss", "Other Times")
ADMIN = ChannelContext("console", "news", channel_name="news", user="ann", can_manage=True)
READER = ChannelContext("console", "news", channel_name="news", user="bob", can_manage=False)


@dataclass
class FakeSchedule:
    poll_at: datetime | None = None
    changed: list[ChannelRecord] = field(default_factory=list)

    def next_poll(self) -> datetime | None:
        return self.poll_at

    def next_digest(self, channel: ChannelRecord) -> datetime | None:
        if not channel.digest_time:
            return None
        return NOW + timedelta(hours=3)

    async def on_changed(self, channel: ChannelRecord) -> None:
        self.changed.append(channel)


async def feed_id(storage: SqlStorage, url: str) -> int:
    return next(f.id for f in await storage.all_feeds() if f.url == url)


async def seed(
    storage: SqlStorage,
    titles: list[str],
    *,
    feed: FeedSource = WIRE,
    ago: timedelta = timedelta(hours=2),
    summary: str = "",
) -> list[StoredItem]:
    """Store items as the poller would: fetched ``ago`` before NOW, default matches."""
    fid = await feed_id(storage, feed.url)
    when = NOW - ago
    items = []
    for t in titles:
        link = f"{feed.url.removesuffix('/rss')}/{slugify(t) or abs(hash(t))}"
        items.append(
            Item(
                guid=link,
                title=t,
                summary=summary,
                link=link,
                canonical_link=link,
                published=when,
                feed_url=feed.url,
                source=feed.name,
            )
        )
    stored = await storage.insert_items(fid, keys_for_batch(items), fetched_at=when)
    matcher = compile_watchlist(default_watchlist())
    for s in stored:
        found = matcher.match(s.item.title, s.item.summary)
        if found:
            await storage.add_matches(s.id, found, scope=None)
    return stored


def titles_in(reply) -> list[str]:  # type: ignore[no-untyped-def]
    assert reply.digest is not None
    return [line.title for line in reply.digest.lines()]


class RecordingSink(Sink):
    def __init__(self) -> None:
        self.sent: list[Any] = []

    @override
    async def send(self, channel: ChannelRecord, digest: Any, *, nonce: str) -> list[str]:
        self.sent.append(digest)
        return [f"m{len(self.sent)}"]
