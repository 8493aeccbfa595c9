"""What the domain mixins share: the table handles, query fragments (a channel's view
of feeds and items, the item select) and the conversions of rows to the core's records."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    FromClause,
    Row,
    Select,
    and_,
    case,
    exists,
    or_,
    select,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.core.models import FeedHealth, Item, StoredItem
from bot.core.ports import (
    ChannelRecord,
    Delivery,
    DeliveryKind,
    DeliveryStatus,
    FeedOrigin,
    FeedState,
    GroupBy,
)
from bot.errors import NotFoundError
from bot.storage.tables import Base

feeds = Base.metadata.tables["feeds"]
feed_errors = Base.metadata.tables["feed_errors"]
items = Base.metadata.tables["items"]
item_keys = Base.metadata.tables["item_keys"]
item_sightings = Base.metadata.tables["item_sightings"]
matches = Base.metadata.tables["matches"]
channels = Base.metadata.tables["channels"]
channel_entries = Base.metadata.tables["channel_entries"]
channel_disabled = Base.metadata.tables["channel_disabled_entries"]
channel_feeds = Base.metadata.tables["channel_feeds"]
deliveries = Base.metadata.tables["deliveries"]
delivery_items = Base.metadata.tables["delivery_items"]

#: at most this many values in one ``IN (...)``
KEY_CHUNK = 500


def in_channel(channel_id: int, feed: FromClause | None = None) -> ColumnElement[bool]:
    """The feed (``feeds`` row in the enclosing query, or the given alias of it) is
    in the channel's view."""
    feed = feeds if feed is None else feed

    def override(state: str) -> ColumnElement[bool]:
        return exists().where(
            channel_feeds.c.channel_id == channel_id,
            channel_feeds.c.feed_id == feed.c.id,
            channel_feeds.c.state == state,
        )

    return or_(and_(feed.c.origin == FeedOrigin.CONFIG, ~override("removed")), override("added"))


def item_in_channel(channel_id: int) -> ColumnElement[bool]:
    """The item (``items`` row in the enclosing query) came from one of the channel's
    feeds, or was also carried by one (a sighting: the copy stored first may be from
    a feed the channel does not follow, and the story must not be missed)."""
    sighted_feed = feeds.alias("sighted_feed")
    sighted = exists().where(
        item_sightings.c.item_id == items.c.id,
        sighted_feed.c.id == item_sightings.c.feed_id,
        in_channel(channel_id, sighted_feed),
    )
    return or_(in_channel(channel_id), sighted)


def subscribed() -> ColumnElement[bool]:
    return exists().where(channel_feeds.c.feed_id == feeds.c.id, channel_feeds.c.state == "added")


async def require_channel(conn: AsyncConnection, channel_id: int) -> Row[Any]:
    row = (await conn.execute(select(channels).where(channels.c.id == channel_id))).first()
    if row is None:
        raise NotFoundError(f"There is no channel #{channel_id}.")
    return row


def item_select(*extra: ColumnElement[Any]) -> Select[Any]:
    return select(items, feeds.c.url.label("feed_url"), *extra).select_from(
        items.join(feeds, feeds.c.id == items.c.feed_id)
    )


def when() -> ColumnElement[datetime]:
    """The item's time (:attr:`StoredItem.when`): published, unless missing or after
    it was fetched; then fetched."""
    return case(
        (items.c.published_at <= items.c.fetched_at, items.c.published_at),
        else_=items.c.fetched_at,
    )


def to_feed_state(r: Row[Any]) -> FeedState:
    return FeedState(
        id=r.id,
        url=r.url,
        name=r.name,
        lang=r.lang,
        etag=r.etag,
        last_modified=r.last_modified,
        content_hash=r.content_hash,
        consecutive_failures=r.consecutive_failures,
        next_poll_at=r.next_poll_at,
        origin=FeedOrigin(r.origin),
    )


def to_feed_health(r: Row[Any]) -> FeedHealth:
    return FeedHealth(
        id=r.id,
        url=r.url,
        name=r.name,
        last_success_at=r.last_success_at,
        last_error=r.last_error,
        last_error_at=r.last_error_at,
        consecutive_failures=r.consecutive_failures,
        next_poll_at=r.next_poll_at,
        item_count=int(r.item_count),
    )


def to_stored(r: Row[Any]) -> StoredItem:
    item = Item(
        guid=r.guid,
        title=r.title,
        summary=r.summary,
        link=r.link,
        canonical_link=r.canonical_link,
        published=r.published_at,
        feed_url=r.feed_url,
        source=r.source,
        lang=r.lang,
    )
    return StoredItem(id=r.id, feed_id=r.feed_id, item=item, fetched_at=r.fetched_at)


def to_channel(r: Row[Any]) -> ChannelRecord:
    return ChannelRecord(
        id=r.id,
        platform=r.platform,
        external_id=r.external_id,
        guild_id=r.guild_id,
        name=r.name,
        timezone=r.timezone,
        digest_time=r.digest_time,
        digest_days=r.digest_days,
        last_digest_at=r.last_digest_at,
        paused_reason=r.paused_reason,
        group_by=GroupBy(r.group_by),
    )


def to_delivery(r: Row[Any]) -> Delivery:
    return Delivery(
        id=r.id,
        channel_id=r.channel_id,
        kind=DeliveryKind(r.kind),
        key=r.key,
        payload=r.payload,
        status=DeliveryStatus(r.status),
        nonce=r.nonce,
        created_at=r.created_at,
        sent_at=r.sent_at,
        attempts=r.attempts,
        last_error=r.last_error,
        message_ids=list(r.message_ids or []),
    )
