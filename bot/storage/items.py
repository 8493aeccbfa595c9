"""Items: stored once across feeds (dedupe keys), sightings by other feeds, matches,
and a channel's view of them."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import ColumnElement, Row, and_, delete, func, insert, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.core.cycle import ItemRow
from bot.core.models import Field, Item, Match, StoredItem
from bot.core.options import DEFAULT_MAX_ITEM_AGE
from bot.core.ports import MatchedItem, Sighting
from bot.core.text import plain
from bot.storage.engine import StorageBase, as_utc, as_utc_opt
from bot.storage.queries import (
    KEY_CHUNK,
    channel_disabled,
    channel_entries,
    feeds,
    item_in_channel,
    item_keys,
    item_select,
    item_sightings,
    items,
    matches,
    to_stored,
    when,
)
from bot.storage.tables import DEFAULT_SCOPE

#: insert_items yields to the event loop after computing the plain text of this many items
_PLAIN_YIELD = 10
#: pg_advisory_xact_lock key serialising insert_items on PostgreSQL
_PG_ITEMS_LOCK = 0x42B0_1735


class ItemsMixin(StorageBase):
    """The :class:`~bot.core.ports.ItemStore` part of :class:`~bot.storage.sql.SqlStorage`
    (but search: :class:`~bot.storage.search.SearchMixin`)."""

    async def insert_items(
        self, feed_id: int, items_: Sequence[tuple[Item, Sequence[str]]], *, fetched_at: datetime
    ) -> list[StoredItem]:
        """An item without any dedupe key is always inserted (the poller gives every
        item at least its guid key).

        One transaction of a few statements whatever the batch size: one SELECT looks
        up every key of the batch (with the stored item's feed, and whether this feed
        already has a sighting of it), then the new items, their keys and the sightings
        are inserted as batches (executemany). A duplicate of an item of *another* feed
        becomes a sighting of it; a copy of one of this feed's own items (a re-poll, the
        same story twice in the document) credits no one new."""
        batch = [_Pending(item, _clean_keys(keys)) for item, keys in items_]
        return [m.stored for m in await self._store(feed_id, batch, fetched_at)]

    async def store_items(
        self, feed_id: int, rows: Sequence[ItemRow], *, fetched_at: datetime
    ) -> list[MatchedItem]:
        """:meth:`insert_items` of rows the parser workers prepared (keys, plain text,
        default matches), with the new items' matches stored in the same transaction
        (:class:`~bot.core.cycle.CycleStore`)."""
        batch = [
            _Pending(r.item, _clean_keys(r.keys), (r.title_plain, r.summary_plain), r.matches or ())
            for r in rows
        ]
        return await self._store(feed_id, batch, fetched_at, with_matches=True)

    async def _store(
        self,
        feed_id: int,
        pending: list[_Pending],
        fetched_at: datetime,
        *,
        with_matches: bool = False,
    ) -> list[MatchedItem]:
        fetched_at = as_utc(fetched_at)
        batch = [
            p
            if _is_utc(p.item.published)
            else p._replace(
                item=dataclasses.replace(p.item, published=as_utc_opt(p.item.published))
            )
            for p in pending
        ]
        if not batch:
            return []
        plain_forms = await _plain_forms(batch)
        all_keys = list(dict.fromkeys(k for p in batch for k in p.keys))
        async with self._tx() as conn:
            if self.dialect == "postgresql":
                # one item writer at a time (across processes): concurrent polls would
                # otherwise wait on each other's uncommitted keys and could deadlock.
                # The key insert below still says ON CONFLICT DO NOTHING and checks what
                # it claimed, so a writer that skips this lock cannot cause duplicates.
                await conn.execute(select(func.pg_advisory_xact_lock(_PG_ITEMS_LOCK)))
            known = await self._known_keys(conn, feed_id, all_keys)
            new: list[int] = []
            in_batch: set[str] = set()
            sightings: dict[int, dict[str, Any]] = {}
            for n, p in enumerate(batch):
                hit = next((known[k] for k in p.keys if k in known), None)
                if hit is not None:
                    _add_sighting(sightings, hit, feed_id, p.item, fetched_at)
                elif not any(k in in_batch for k in p.keys):
                    in_batch.update(p.keys)
                    new.append(n)
            stored, lost = await self._insert_new(
                conn, feed_id, batch=batch, new=new, plain_forms=plain_forms, fetched_at=fetched_at
            )
            if lost:  # another writer stored them since we looked: credit its items
                lost_keys = [k for n in lost for k in batch[n].keys]
                won = await self._known_keys(conn, feed_id, lost_keys)
                for n in lost:
                    hit = next((won[k] for k in batch[n].keys if k in won), None)
                    if hit is not None:
                        _add_sighting(sightings, hit, feed_id, batch[n].item, fetched_at)
            if sightings:
                await conn.execute(
                    self._insert(item_sightings).on_conflict_do_nothing(
                        index_elements=["item_id", "feed_id"]
                    ),
                    list(sightings.values()),
                )
            out = [MatchedItem(s, batch[n].matches) for n, s in stored]
            if with_matches:
                await self._insert_matches(
                    conn, _match_rows([(m.stored.id, m.matches) for m in out], DEFAULT_SCOPE)
                )
        return out

    async def _known_keys(
        self, conn: AsyncConnection, feed_id: int, keys: Sequence[str]
    ) -> dict[str, _KnownKey]:
        """The stored keys among ``keys``: key -> the item that holds it (its feed, and
        whether ``feed_id`` already has a sighting of it: asked only when some of the
        items are another feed's, so a re-poll of a feed costs one SELECT)."""
        rows: list[Row[Any]] = []
        for i in range(0, len(keys), KEY_CHUNK):
            stmt = (
                select(item_keys.c.key, item_keys.c.item_id, items.c.feed_id)
                .select_from(item_keys.join(items, items.c.id == item_keys.c.item_id))
                .where(item_keys.c.key.in_(keys[i : i + KEY_CHUNK]))
            )
            rows.extend(await conn.execute(stmt))
        others = list(dict.fromkeys(r.item_id for r in rows if r.feed_id != feed_id))
        sighted: set[int] = set()
        for i in range(0, len(others), KEY_CHUNK):
            stmt = select(item_sightings.c.item_id).where(
                item_sightings.c.feed_id == feed_id,
                item_sightings.c.item_id.in_(others[i : i + KEY_CHUNK]),
            )
            sighted.update((await conn.execute(stmt)).scalars())
        return {r.key: _KnownKey(r.item_id, r.feed_id, r.item_id in sighted) for r in rows}

    async def _insert_new(
        self,
        conn: AsyncConnection,
        feed_id: int,
        *,
        batch: Sequence[_Pending],
        new: Sequence[int],
        plain_forms: Sequence[tuple[str, str]],
        fetched_at: datetime,
    ) -> tuple[list[tuple[int, StoredItem]], list[int]]:
        """Insert the items ``new`` (positions in ``batch``) and claim their keys:
        (the stored items in order with their positions, the positions of items that
        lost a key to another writer, which are removed again)."""
        if not new:
            return [], []
        ids: list[int]
        claimed: set[str] | None
        if self.dialect == "sqlite":
            ids, claimed = await self._insert_new_sqlite(
                conn,
                feed_id,
                batch=batch,
                new=new,
                plain_forms=plain_forms,
                fetched_at=fetched_at,
            )
            return await self._keep_claimed(conn, feed_id, batch, new, ids, claimed, fetched_at)
        rows: list[dict[str, Any]] = []
        for n in new:
            item = batch[n].item
            title_plain, summary_plain = plain_forms[n]
            rows.append(
                {
                    "feed_id": feed_id,
                    "guid": item.guid,
                    "link": item.link,
                    "canonical_link": item.canonical_link,
                    "title": item.title,
                    "summary": item.summary,
                    "title_plain": title_plain,
                    "summary_plain": summary_plain,
                    "published_at": item.published,
                    "fetched_at": fetched_at,
                    "source": item.source,
                    "lang": item.lang,
                }
            )
        result = await conn.execute(
            insert(items).returning(items.c.id, sort_by_parameter_order=True), rows
        )
        ids = list(result.scalars())
        key_rows = [
            {"key": k, "item_id": i} for n, i in zip(new, ids, strict=True) for k in batch[n].keys
        ]
        claimed = set()
        if key_rows:
            claimed = set(
                (
                    await conn.execute(
                        self._insert(item_keys)
                        .on_conflict_do_nothing(index_elements=["key"])
                        .returning(item_keys.c.key),
                        key_rows,
                    )
                ).scalars()
            )
        return await self._keep_claimed(conn, feed_id, batch, new, ids, claimed, fetched_at)

    async def _keep_claimed(  # noqa: PLR0917
        self,
        conn: AsyncConnection,
        feed_id: int,
        batch: Sequence[_Pending],
        new: Sequence[int],
        ids: Sequence[int],
        claimed: set[str] | None,
        fetched_at: datetime,
    ) -> tuple[list[tuple[int, StoredItem]], list[int]]:
        """Split the inserted items into those that claimed all their keys and those
        that lost one (removed again). ``claimed`` None: every key was claimed."""
        stored: list[tuple[int, StoredItem]] = []
        lost: list[int] = []
        lost_ids: list[int] = []
        for n, item_id in zip(new, ids, strict=True):
            if claimed is None or all(k in claimed for k in batch[n].keys):
                stored.append((n, StoredItem(item_id, feed_id, batch[n].item, fetched_at)))
            else:
                lost.append(n)
                lost_ids.append(item_id)
        if lost_ids:
            await conn.execute(delete(item_keys).where(item_keys.c.item_id.in_(lost_ids)))
            await conn.execute(delete(items).where(items.c.id.in_(lost_ids)))
        return stored, lost

    async def _insert_new_sqlite(
        self,
        conn: AsyncConnection,
        feed_id: int,
        *,
        batch: Sequence[_Pending],
        new: Sequence[int],
        plain_forms: Sequence[tuple[str, str]],
        fetched_at: datetime,
    ) -> tuple[list[int], set[str] | None]:
        """The items and their keys through the driver's executemany (SQLAlchemy's
        per-row parameter processing cost as much as the inserts themselves). SQLAlchemy
        cannot batch an INSERT .. RETURNING in parameter order on SQLite either, and the
        transaction holds the write lock (BEGIN IMMEDIATE): the rows are numbered as
        SQLite itself would number them, after the largest id."""
        top = await conn.execute(select(func.coalesce(func.max(items.c.id), 0)))
        first = int(top.scalar_one()) + 1
        ids = list(range(first, first + len(new)))
        when = _sqlite_datetime
        fetched = when(fetched_at)
        rows = []
        for n, item_id in zip(new, ids, strict=True):
            item = batch[n].item
            title_plain, summary_plain = plain_forms[n]
            rows.append(
                (
                    item_id,
                    feed_id,
                    item.guid,
                    item.link,
                    item.canonical_link,
                    item.title,
                    item.summary,
                    title_plain,
                    summary_plain,
                    None if item.published is None else when(item.published),
                    fetched,
                    item.source,
                    item.lang,
                )
            )
        await conn.exec_driver_sql(_SQLITE_INSERT_ITEMS, rows)
        key_rows = [(k, i) for n, i in zip(new, ids, strict=True) for k in batch[n].keys]
        if not key_rows:
            return ids, None
        done = await conn.exec_driver_sql(_SQLITE_INSERT_KEYS, key_rows)
        if done.rowcount == len(key_rows):
            return ids, None  # every key claimed (the usual case: one statement)
        # another writer stored some of the keys since the lookup: which are ours?
        mine: set[str] = set()
        for i in range(0, len(ids), KEY_CHUNK):
            stmt = select(item_keys.c.key).where(item_keys.c.item_id.in_(ids[i : i + KEY_CHUNK]))
            mine.update((await conn.execute(stmt)).scalars())
        return ids, mine

    async def add_matches(
        self, item_id: int, matches_: Sequence[Match], *, scope: int | None = None
    ) -> None:
        """The first match per entry wins; a (item, scope, entry) already stored is kept."""
        await self.add_matches_bulk([(item_id, matches_)], scope=scope)

    async def add_matches_bulk(
        self, batch: Sequence[tuple[int, Sequence[Match]]], *, scope: int | None = None
    ) -> None:
        """:meth:`add_matches` for many items: one transaction, one executemany."""
        rows = _match_rows(batch, DEFAULT_SCOPE if scope is None else scope)
        if not rows:
            return
        async with self._tx() as conn:
            await self._insert_matches(conn, rows)

    async def _insert_matches(self, conn: AsyncConnection, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        stmt = self._insert(matches).on_conflict_do_nothing(
            index_elements=["item_id", "scope", "entry_id"]
        )
        await conn.execute(stmt, rows)

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


def _clean_keys(keys: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(k for k in keys if k))


class _Pending(NamedTuple):
    """An item on its way in: its keys, its plain title and summary when the parser
    worker already computed them, and its default matches (stored with it)."""

    item: Item
    keys: list[str]
    plain: tuple[str, str] | None = None
    matches: tuple[Match, ...] = ()


def _is_utc(value: datetime | None) -> bool:
    return value is None or value.tzinfo is UTC


async def _plain_forms(batch: Sequence[_Pending]) -> list[tuple[str, str]]:
    """Each item's plain title and summary: as given, else computed here (CPU work on
    the loop thread, ~0.1 ms a long item: other tasks run now and then)."""
    out: list[tuple[str, str]] = []
    computed = 0
    for p in batch:
        if p.plain is not None:
            out.append(p.plain)
            continue
        out.append((plain(p.item.title), plain(p.item.summary)))
        computed += 1
        if computed % _PLAIN_YIELD == 0:
            await asyncio.sleep(0)
    return out


def _match_rows(batch: Sequence[tuple[int, Sequence[Match]]], scope: int) -> list[dict[str, Any]]:
    """The rows of ``matches`` for (item id, matches): the first match per entry wins."""
    rows: dict[tuple[int, str], dict[str, Any]] = {}
    for item_id, found in batch:
        for m in found:
            rows.setdefault(
                (item_id, m.entry_id),
                {
                    "item_id": item_id,
                    "scope": scope,
                    "entry_id": m.entry_id,
                    "alias": m.alias,
                    "field": str(m.field),
                },
            )
    return list(rows.values())


def _sqlite_datetime(value: datetime) -> str:
    """An aware datetime as :class:`~bot.storage.tables.UTCDateTime` stores it on SQLite
    (naive UTC, the text form of SQLAlchemy's SQLite DATETIME)."""
    d = value.astimezone(UTC)
    return (
        f"{d.year:04d}-{d.month:02d}-{d.day:02d} "
        f"{d.hour:02d}:{d.minute:02d}:{d.second:02d}.{d.microsecond:06d}"
    )


_ITEM_COLUMNS = (
    "id, feed_id, guid, link, canonical_link, title, summary, title_plain, summary_plain, "
    "published_at, fetched_at, source, lang"
)
_SQLITE_INSERT_ITEMS = f"INSERT INTO items ({_ITEM_COLUMNS}) VALUES ({', '.join('?' * 13)})"
_SQLITE_INSERT_KEYS = (
    "INSERT INTO item_keys (key, item_id) VALUES (?, ?) ON CONFLICT (key) DO NOTHING"
)


class _KnownKey(NamedTuple):
    """A stored dedupe key's item, as ``insert_items`` sees it from one feed."""

    item_id: int
    feed_id: int  # the item's own feed
    sighted: bool  # the inserting feed already has a sighting of the item


def _add_sighting(
    pending: dict[int, dict[str, Any]],
    hit: _KnownKey,
    feed_id: int,
    item: Item,
    seen_at: datetime,
) -> None:
    """Queue a sighting of ``hit``'s item by ``feed_id`` (the first copy's row wins),
    unless the item is the feed's own or the sighting is already stored."""
    if hit.feed_id == feed_id or hit.sighted or hit.item_id in pending:
        return
    pending[hit.item_id] = {
        "item_id": hit.item_id,
        "feed_id": feed_id,
        "source": item.source,
        "link": item.link or item.canonical_link,
        "seen_at": seen_at,
    }
