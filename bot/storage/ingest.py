"""Items coming in: stored once across feeds (dedupe keys), the copies other feeds carry
recorded as sightings, their default matches, and, for a poll cycle, many feeds' items
with their fetch records in one transaction (:class:`~bot.core.cycle.CycleStore`).

One transaction of a few statements whatever the batch size and however many feeds it
spans: one SELECT looks up every key of the batch (with the stored item's feed, and
which of the batch's feeds already have a sighting of it); the order of the parts and of
their items then decides, without I/O (:func:`plan_batch`), which items are new and
which are copies; the new items, their keys, the sightings and the matches are inserted
as batches (executemany), and the fetch records written.

A copy of an item stored from *another* feed (before, or earlier in the same batch)
becomes a sighting of it (its outlet is credited); a copy of one of the feed's own items
(a re-poll, the same story twice in a document) credits no one new.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

from sqlalchemy import delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.core.cycle import FeedRows, FetchSuccess
from bot.core.models import Item, Match, StoredItem
from bot.core.ports import MatchedItem
from bot.core.text import plain
from bot.storage.engine import StorageBase, as_utc, as_utc_opt
from bot.storage.feeds import write_fetch_successes
from bot.storage.queries import KEY_CHUNK, item_keys, item_sightings, items, matches
from bot.storage.tables import DEFAULT_SCOPE

#: the plain text of this many items is computed between two yields to the event loop
_PLAIN_YIELD = 10
#: pg_advisory_xact_lock key serialising item writers on PostgreSQL
_PG_ITEMS_LOCK = 0x42B0_1735

#: (part index, position in the part): one item of a batch
Slot = tuple[int, int]


class IngestMixin(StorageBase):
    """The writing half of :class:`~bot.core.ports.ItemStore` and the
    :class:`~bot.core.cycle.CycleStore` of :class:`~bot.storage.sql.SqlStorage`."""

    async def insert_items(
        self, feed_id: int, items_: Sequence[tuple[Item, Sequence[str]]], *, fetched_at: datetime
    ) -> list[StoredItem]:
        """An item without any dedupe key is always inserted (the poller gives every
        item at least its guid key)."""
        part = Part(feed_id, [Pending(item, _clean_keys(keys)) for item, keys in items_])
        [out] = await self._store([part], fetched_at)
        return [m.stored for m in out]

    async def store_batch(
        self,
        parts: Sequence[FeedRows],
        *,
        fetched_at: datetime,
        records: Sequence[FetchSuccess] = (),
    ) -> list[list[MatchedItem]]:
        """Rows the parser workers prepared (keys, plain text, default matches) of many
        feeds, stored in order with their matches, and ``records``, in ONE transaction.
        Returns each part's new items, in order."""
        pending = [
            Part(
                p.feed_id,
                [
                    Pending(
                        r.item,
                        _clean_keys(r.keys),
                        (r.title_plain, r.summary_plain),
                        r.matches or (),
                    )
                    for r in p.rows
                ],
            )
            for p in parts
        ]
        return await self._store(pending, fetched_at, with_matches=True, records=records)

    async def _store(
        self,
        parts: list[Part],
        fetched_at: datetime,
        *,
        with_matches: bool = False,
        records: Sequence[FetchSuccess] = (),
    ) -> list[list[MatchedItem]]:
        fetched_at = as_utc(fetched_at)
        parts = [Part(p.feed_id, [_with_utc(x) for x in p.pending]) for p in parts]
        if not any(p.pending for p in parts) and not records:
            return [[] for _ in parts]
        forms = [await _plain_forms(p.pending) for p in parts]
        all_keys = list(dict.fromkeys(k for p in parts for x in p.pending for k in x.keys))
        feed_ids = {p.feed_id for p in parts}
        async with self._tx() as conn:
            if self.dialect == "postgresql":
                # one item writer at a time (across processes): concurrent polls would
                # otherwise wait on each other's uncommitted keys and could deadlock.
                # The key insert below still says ON CONFLICT DO NOTHING and checks what
                # it claimed, so a writer that skips this lock cannot cause duplicates.
                await conn.execute(select(func.pg_advisory_xact_lock(_PG_ITEMS_LOCK)))
            known = await self._known_keys(conn, feed_ids, all_keys)
            plan = plan_batch(parts, known, fetched_at)
            ids, lost = await self._insert_new(conn, parts, plan.new, forms, fetched_at)
            # copies of items new in this batch: sightings of them, now that they have ids
            orphans: list[Slot] = []
            for copy, original in plan.copies:
                if original in ids:
                    target = KnownKey(ids[original], parts[original[0]].feed_id)
                    plan.credit(target, parts[copy[0]], copy[1], fetched_at, set())
                else:
                    orphans.append(copy)  # its original lost a key: see below
            redo = lost + orphans
            if redo:  # another writer stored them since we looked: credit its items
                lookup = [k for i, n in redo for k in parts[i].pending[n].keys]
                won = await self._known_keys(conn, feed_ids, lookup)
                for i, n in redo:
                    hit = next(
                        (won.keys[k] for k in parts[i].pending[n].keys if k in won.keys), None
                    )
                    if hit is not None:
                        plan.credit(hit, parts[i], n, fetched_at, won.sighted)
            if plan.sightings:
                await conn.execute(
                    self._insert(item_sightings).on_conflict_do_nothing(
                        index_elements=["item_id", "feed_id"]
                    ),
                    list(plan.sightings.values()),
                )
            out: list[list[MatchedItem]] = [[] for _ in parts]
            for slot in plan.new:
                if slot in ids:
                    i, n = slot
                    p = parts[i].pending[n]
                    stored = StoredItem(ids[slot], parts[i].feed_id, p.item, fetched_at)
                    out[i].append(MatchedItem(stored, p.matches))
            if with_matches:
                batch = [(m.stored.id, m.matches) for part in out for m in part]
                await self._insert_matches(conn, match_rows(batch, DEFAULT_SCOPE))
            if records:
                await write_fetch_successes(conn, records)
        return out

    async def _known_keys(
        self, conn: AsyncConnection, feed_ids: set[int], keys: Sequence[str]
    ) -> KnownKeys:
        """The stored keys among ``keys`` (key -> the item that holds it, and its feed),
        and which of ``feed_ids`` already have a sighting of those items (asked only
        about items of other feeds, so a re-poll of a feed costs one SELECT)."""
        found: dict[str, KnownKey] = {}
        for i in range(0, len(keys), KEY_CHUNK):
            stmt = (
                select(item_keys.c.key, item_keys.c.item_id, items.c.feed_id)
                .select_from(item_keys.join(items, items.c.id == item_keys.c.item_id))
                .where(item_keys.c.key.in_(keys[i : i + KEY_CHUNK]))
            )
            for r in await conn.execute(stmt):
                found[r.key] = KnownKey(r.item_id, r.feed_id)
        others = list(dict.fromkeys(h.item_id for h in found.values() if feed_ids - {h.feed_id}))
        sighted: set[tuple[int, int]] = set()
        for i in range(0, len(others), KEY_CHUNK):
            stmt = select(item_sightings.c.item_id, item_sightings.c.feed_id).where(
                item_sightings.c.feed_id.in_(sorted(feed_ids)),
                item_sightings.c.item_id.in_(others[i : i + KEY_CHUNK]),
            )
            sighted.update((r.item_id, r.feed_id) for r in await conn.execute(stmt))
        return KnownKeys(found, sighted)

    async def _insert_new(
        self,
        conn: AsyncConnection,
        parts: Sequence[Part],
        new: Sequence[Slot],
        forms: Sequence[Sequence[tuple[str, str]]],
        fetched_at: datetime,
    ) -> tuple[dict[Slot, int], list[Slot]]:
        """Insert the items ``new`` and claim their keys: (the stored items' ids, the
        items that lost a key to another writer, which are removed again)."""
        if not new:
            return {}, []
        rows = [_item_row(parts[i].feed_id, parts[i].pending[n].item, forms[i][n]) for i, n in new]
        if self.dialect == "sqlite":
            ids, claimed = await self._insert_new_sqlite(conn, parts, new, rows, fetched_at)
        else:
            for row in rows:
                row["fetched_at"] = fetched_at
            result = await conn.execute(
                insert(items).returning(items.c.id, sort_by_parameter_order=True), rows
            )
            ids = list(result.scalars())
            key_rows = [
                {"key": k, "item_id": item_id}
                for (i, n), item_id in zip(new, ids, strict=True)
                for k in parts[i].pending[n].keys
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
        stored: dict[Slot, int] = {}
        lost: list[Slot] = []
        lost_ids: list[int] = []
        for (i, n), item_id in zip(new, ids, strict=True):
            if claimed is None or all(k in claimed for k in parts[i].pending[n].keys):
                stored[i, n] = item_id
            else:
                lost.append((i, n))
                lost_ids.append(item_id)
        if lost_ids:
            await conn.execute(delete(item_keys).where(item_keys.c.item_id.in_(lost_ids)))
            await conn.execute(delete(items).where(items.c.id.in_(lost_ids)))
        return stored, lost

    async def _insert_new_sqlite(
        self,
        conn: AsyncConnection,
        parts: Sequence[Part],
        new: Sequence[Slot],
        rows: Sequence[dict[str, Any]],
        fetched_at: datetime,
    ) -> tuple[list[int], set[str] | None]:
        """The items and their keys through the driver's executemany (SQLAlchemy's
        per-row parameter processing cost as much as the inserts themselves). SQLAlchemy
        cannot batch an INSERT .. RETURNING in parameter order on SQLite either, and the
        transaction holds the write lock (BEGIN IMMEDIATE): the rows are numbered as
        SQLite itself would number them, after the largest id. ``None``: every key was
        claimed."""
        top = await conn.execute(select(func.coalesce(func.max(items.c.id), 0)))
        first = int(top.scalar_one()) + 1
        ids = list(range(first, first + len(new)))
        fetched = _sqlite_datetime(fetched_at)
        values = [
            (
                item_id,
                *(row[c] for c in _ITEM_COLUMNS[1:9]),
                None if row["published_at"] is None else _sqlite_datetime(row["published_at"]),
                fetched,
                row["source"],
                row["lang"],
            )
            for item_id, row in zip(ids, rows, strict=True)
        ]
        await conn.exec_driver_sql(_SQLITE_INSERT_ITEMS, values)
        key_rows = [
            (k, item_id)
            for (i, n), item_id in zip(new, ids, strict=True)
            for k in parts[i].pending[n].keys
        ]
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
        rows = match_rows(batch, DEFAULT_SCOPE if scope is None else scope)
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


# -- the plan: which items of a batch are new, which are copies (no I/O) ------------------


class Pending(NamedTuple):
    """An item on its way in: its keys, its plain title and summary when the parser
    worker already computed them, and its default matches (stored with it)."""

    item: Item
    keys: list[str]
    plain: tuple[str, str] | None = None
    matches: tuple[Match, ...] = ()


class Part(NamedTuple):
    """One feed's items in a batch, in document order."""

    feed_id: int
    pending: list[Pending]


class KnownKey(NamedTuple):
    """A stored dedupe key's item and the item's own feed."""

    item_id: int
    feed_id: int


@dataclass(frozen=True, slots=True)
class KnownKeys:
    keys: dict[str, KnownKey]
    #: (item id, feed id): that feed already has a sighting of that item
    sighted: set[tuple[int, int]] = field(default_factory=set)


@dataclass(slots=True)
class Plan:
    #: the items to insert, in order
    new: list[Slot] = field(default_factory=list)
    #: sightings to record: (item id, feed id) -> row (the first copy's row wins)
    sightings: dict[tuple[int, int], dict[str, Any]] = field(default_factory=dict)
    #: (copy, original): a copy of an item new in this batch, carried by another feed
    copies: list[tuple[Slot, Slot]] = field(default_factory=list)
    #: the sightings already stored (from the lookup)
    sighted: set[tuple[int, int]] = field(default_factory=set)

    def credit(
        self,
        hit: KnownKey,
        part: Part,
        n: int,
        seen_at: datetime,
        sighted: set[tuple[int, int]] | None = None,
    ) -> None:
        """Queue a sighting of ``hit``'s item by the part's feed (the first copy's row
        wins), unless the item is the feed's own or the sighting is already stored
        (``sighted``: the stored ones; the lookup's by default)."""
        key = (hit.item_id, part.feed_id)
        stored = self.sighted if sighted is None else sighted
        if hit.feed_id == part.feed_id or key in self.sightings or key in stored:
            return
        item = part.pending[n].item
        self.sightings[key] = {
            "item_id": hit.item_id,
            "feed_id": part.feed_id,
            "source": item.source,
            "link": item.link or item.canonical_link,
            "seen_at": seen_at,
        }


def plan_batch(parts: Sequence[Part], known: KnownKeys, seen_at: datetime) -> Plan:
    """Walk the batch in order: an item none of whose keys is stored, nor claimed by an
    earlier item of the batch, is new; a copy of a stored item is a sighting of it (unless
    it is the feed's own, or the feed already has one); a copy of an earlier new item of
    another feed is recorded as a copy (its sighting needs the original's id)."""
    plan = Plan(sighted=known.sighted)
    claimed: dict[str, Slot] = {}
    copied: set[tuple[Slot, int]] = set()
    for i, part in enumerate(parts):
        for n, p in enumerate(part.pending):
            hit = next((known.keys[k] for k in p.keys if k in known.keys), None)
            if hit is not None:
                plan.credit(hit, part, n, seen_at)
                continue
            original = next((claimed[k] for k in p.keys if k in claimed), None)
            if original is None:
                for k in p.keys:
                    claimed[k] = (i, n)
                plan.new.append((i, n))
            elif parts[original[0]].feed_id != part.feed_id and (
                (original, part.feed_id) not in copied
            ):
                copied.add((original, part.feed_id))
                plan.copies.append(((i, n), original))
    return plan


# -- rows ---------------------------------------------------------------------------------


def _clean_keys(keys: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(k for k in keys if k))


def _with_utc(p: Pending) -> Pending:
    published = p.item.published
    if published is None or published.tzinfo is UTC:
        return p
    return p._replace(item=dataclasses.replace(p.item, published=as_utc_opt(published)))


async def _plain_forms(batch: Sequence[Pending]) -> list[tuple[str, str]]:
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


def _item_row(feed_id: int, item: Item, form: tuple[str, str]) -> dict[str, Any]:
    return {
        "feed_id": feed_id,
        "guid": item.guid,
        "link": item.link,
        "canonical_link": item.canonical_link,
        "title": item.title,
        "summary": item.summary,
        "title_plain": form[0],
        "summary_plain": form[1],
        "published_at": item.published,
        "source": item.source,
        "lang": item.lang,
    }


def match_rows(batch: Sequence[tuple[int, Sequence[Match]]], scope: int) -> list[dict[str, Any]]:
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
    "id",
    "feed_id",
    "guid",
    "link",
    "canonical_link",
    "title",
    "summary",
    "title_plain",
    "summary_plain",
    "published_at",
    "fetched_at",
    "source",
    "lang",
)
_SQLITE_INSERT_ITEMS = (
    f"INSERT INTO items ({', '.join(_ITEM_COLUMNS)}) VALUES ({', '.join('?' * 13)})"
)
_SQLITE_INSERT_KEYS = (
    "INSERT INTO item_keys (key, item_id) VALUES (?, ?) ON CONFLICT (key) DO NOTHING"
)
