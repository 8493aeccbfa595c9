"""Items as read back: sightings by other feeds, matches, and a channel's view of them
(the write path is :mod:`bot.storage.ingest`)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.core.models import Field, Match, StoredItem
from bot.core.options import DEFAULT_MAX_ITEM_AGE
from bot.core.ports import MatchedItem, Sighting
from bot.storage.engine import StorageBase, as_utc
from bot.storage.queries import (
    KEY_CHUNK,
    channel_disabled,
    channel_entries,
    feeds,
    item_in_channel,
    item_select,
    item_sightings,
    items,
    matches,
    to_stored,
    when,
)
from bot.storage.tables import DEFAULT_SCOPE


class ItemsMixin(StorageBase):
    """The reading half of :class:`~bot.core.ports.ItemStore` in
    :class:`~bot.storage.sql.SqlStorage` (search: :class:`~bot.storage.search.SearchMixin`;
    writes: :class:`~bot.storage.ingest.IngestMixin`)."""

    async def sightings(self, item_ids: Sequence[int]) -> dict[int, tuple[Sighting, ...]]:
        async with self._read() as conn:
            return await self._sightings(conn, item_ids)

    async def _sightings(
        self, conn: AsyncConnection, item_ids: Iterable[int]
    ) -> dict[int, tuple[Sighting, ...]]:
        ids = list(dict.fromkeys(item_ids))
        found: dict[int, list[Sighting]] = {}
        for i in range(0, len(ids), KEY_CHUNK):
            stmt = (
                select(item_sightings)
                .where(item_sightings.c.item_id.in_(ids[i : i + KEY_CHUNK]))
                .order_by(item_sightings.c.seen_at, item_sightings.c.id)
            )
            for r in await conn.execute(stmt):
                found.setdefault(r.item_id, []).append(
                    Sighting(feed_id=r.feed_id, source=r.source, link=r.link, seen_at=r.seen_at)
                )
        return {k: tuple(v) for k, v in found.items()}

    async def items_between(self, start: datetime, end: datetime) -> list[StoredItem]:
        start, end = as_utc(start), as_utc(end)
        stmt = (
            item_select()
            .where(
                or_(
                    and_(items.c.fetched_at >= start, items.c.fetched_at < end),
                    and_(items.c.published_at >= start, items.c.published_at < end),
                )
            )
            .order_by(when().desc(), items.c.id.desc())
        )
        async with self._read() as conn:
            rows = (await conn.execute(stmt)).all()
        return [to_stored(r) for r in rows]

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
        """Items whose time (published, else fetched: :func:`when`) is in [start, end),
        backlog left out (:meth:`_news`). ``late``: also the items fetched in the
        period but published before it (consecutive digests then miss nothing that
        arrived late, and repeat nothing). Newest first; matches sorted by entry id;
        with each item's sightings (other feeds that carried it). Default matches are
        dropped for entries the channel disabled or replaced with its own entry of the
        same id."""
        disabled = select(channel_disabled.c.entry_id).where(
            channel_disabled.c.channel_id == channel_id
        )
        own = select(channel_entries.c.entry_id).where(channel_entries.c.channel_id == channel_id)
        visible = or_(
            matches.c.scope == channel_id,
            and_(
                matches.c.scope == DEFAULT_SCOPE,
                matches.c.entry_id.not_in(disabled),
                matches.c.entry_id.not_in(own),
            ),
        )
        conditions = [
            # an item's time is never after it was fetched: the fetched_at index narrows
            items.c.fetched_at >= as_utc(start),
            when() < as_utc(end),
            item_in_channel(channel_id),
            visible,
        ]
        if not late:
            conditions.append(when() >= as_utc(start))
        if max_age is not None:
            conditions.append(self._news(max_age))
        if entry_id is not None:
            conditions.append(matches.c.entry_id == entry_id)
        stmt = (
            select(
                items,
                feeds.c.url.label("feed_url"),
                matches.c.entry_id.label("m_entry"),
                matches.c.alias.label("m_alias"),
                matches.c.field.label("m_field"),
            )
            .select_from(
                items.join(feeds, feeds.c.id == items.c.feed_id).join(
                    matches, matches.c.item_id == items.c.id
                )
            )
            .where(*conditions)
            .order_by(when().desc(), items.c.id.desc(), matches.c.entry_id)
        )
        async with self._read() as conn:
            rows = (await conn.execute(stmt)).all()
            seen = await self._sightings(conn, (r.id for r in rows))
        out: list[MatchedItem] = []
        current: StoredItem | None = None
        found: list[Match] = []
        for r in rows:
            if current is None or current.id != r.id:
                if current is not None:
                    out.append(MatchedItem(current, tuple(found), seen.get(current.id, ())))
                current, found = to_stored(r), []
            found.append(Match(r.m_entry, r.m_alias, Field(r.m_field)))
        if current is not None:
            out.append(MatchedItem(current, tuple(found), seen.get(current.id, ())))
        return out

    def _news(self, max_age: timedelta) -> ColumnElement[bool]:
        """Not backlog: the item was not published before its feed was added (and
        fetched after: a feed's first poll brings its archive), nor more than
        ``max_age`` before it was fetched. Needs ``feeds`` joined on the item's feed."""
        t = when()
        added_before = and_(t < feeds.c.created_at, feeds.c.created_at <= items.c.fetched_at)
        age: ColumnElement[Any]
        if self.dialect == "sqlite":
            age = (func.julianday(items.c.fetched_at) - func.julianday(t)) * 86400.0
        else:
            age = func.extract("epoch", items.c.fetched_at - t)
        return and_(~added_before, age <= max_age.total_seconds())

    async def count_items_since(self, since: datetime) -> int:
        stmt = select(func.count()).select_from(items).where(items.c.fetched_at >= as_utc(since))
        async with self._read() as conn:
            return int((await conn.execute(stmt)).scalar_one())
