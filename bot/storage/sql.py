"""``SqlStorage``: the Storage Protocol on SQLAlchemy 2 async.

URLs
- ``sqlite+aiosqlite:///path/to/briefbot.db`` (the default deployment): parent
  directories are created; each connection gets WAL, foreign keys and a busy timeout,
  and every transaction starts with ``BEGIN IMMEDIATE`` so that concurrent writers
  (another process) queue instead of failing half-way. Within one process, SQLite access
  is serialised by an asyncio lock.
- ``sqlite+aiosqlite:///:memory:`` (tests): a single shared connection (StaticPool), so
  every call sees the same database; it lives until :meth:`SqlStorage.close`.
- ``postgresql+asyncpg://user:pass@host/db``: the same code; only upserts (``ON
  CONFLICT``) and full-text search are dialect-switched.

Call :meth:`SqlStorage.open` first: it runs the Alembic migrations to head (the schema is
never created from the models directly, so upgrades keep users' data).

Every datetime going in must be timezone-aware (a naive one is a bug: ``ValueError``);
every datetime coming out is aware UTC.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import re
import secrets
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from alembic import command
from alembic.config import Config
from alembic.util.exc import CommandError
from sqlalchemy import (
    ColumnElement,
    Connection,
    Integer,
    Row,
    Table,
    and_,
    case,
    column,
    delete,
    event,
    exists,
    func,
    insert,
    literal_column,
    or_,
    select,
    table,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import (
    DatabaseError,
    DataError,
    IntegrityError,
    InterfaceError,
    NotSupportedError,
    OperationalError,
    ProgrammingError,
    SQLAlchemyError,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import StaticPool

from bot.config import check_database_url, hide_password
from bot.core.models import FeedHealth, FeedSource, Field, Item, Match, StoredItem
from bot.core.text import CJK as _CJK  # FTS5 cannot split these into words: LIKE
from bot.core.text import normalize, plain
from bot.errors import ConfigError, InputError, NotFoundError, StorageError
from bot.storage.base import (
    ChannelEntryRecord,
    ChannelRecord,
    Delivery,
    FeedState,
    MatchedItem,
    SearchHit,
    Sighting,
    Storage,
)
from bot.storage.tables import DEFAULT_SCOPE, Base

MIGRATIONS_DIR = Path(__file__).parent / "migrations"

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

#: how long individual fetch failures are kept (for digest headers and /status)
FEED_ERROR_RETENTION = timedelta(days=30)
MAX_QUERY_CHARS = 300
_KEY_CHUNK = 500
#: insert_items yields to the event loop after computing the plain text of this many items
_PLAIN_YIELD = 10
#: pg_advisory_xact_lock key serialising insert_items on PostgreSQL
_PG_ITEMS_LOCK = 0x42B0_1735
_MODES = ("digest", "instant")
_GROUP_BY = ("entry", "story")
_TIME = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
_WORDCHAR = re.compile(r"[^\W_]")
#: SQLite's FTS5 index (created by the migration, not a model)
_ITEMS_FTS = table("items_fts", column("rowid", Integer))
#: the PostgreSQL text-search vector; must be the expression of the ix_items_fts index
_PG_TSVECTOR = "to_tsvector('english', items.title_plain || ' ' || items.summary_plain)"


def _utc(value: datetime) -> datetime:
    if not isinstance(value, datetime):
        raise TypeError(f"expected a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"naive datetime {value!r}: storage needs aware datetimes")
    return value.astimezone(UTC)


def _utc_opt(value: datetime | None) -> datetime | None:
    return None if value is None else _utc(value)


def _now() -> datetime:
    return datetime.now(UTC)


def _nonce() -> str:
    """18 random decimal digits: fits Discord's 25-character nonce, never starts with 0."""
    return str(10**17 + secrets.randbelow(9 * 10**17))


def _is_memory(database: str | None) -> bool:
    return not database or database == ":memory:" or database.startswith("file::memory:")


class SqlStorage:
    """The Storage Protocol on SQLAlchemy 2 async (SQLite or PostgreSQL)."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        """Raises :class:`ConfigError` when the URL is unusable (not a URL, another
        database or driver, a driver not installed, a SQLite directory that cannot be
        created). Nothing connects yet: see :meth:`open`."""
        try:
            parsed = check_database_url(url)
        except ValueError as err:
            raise ConfigError(str(err), key="storage.database_url") from None
        self.dialect = parsed.get_backend_name()
        kwargs: dict[str, Any] = {"echo": echo}
        self._lock: asyncio.Lock | None = None
        memory = False
        if self.dialect == "sqlite":
            self._lock = asyncio.Lock()
            memory = _is_memory(parsed.database)
            if memory:
                kwargs["poolclass"] = StaticPool
                kwargs["connect_args"] = {"check_same_thread": False}
            else:
                assert parsed.database is not None
                path = Path(parsed.database).expanduser()
                try:
                    path.parent.mkdir(parents=True, exist_ok=True)
                except OSError as err:
                    raise ConfigError(
                        f"cannot create the database directory {path.parent} "
                        f"({err.strerror or err}): choose a directory you can write to "
                        "(storage.data_dir or storage.database_url; --data-dir for the demo)"
                    ) from None
                parsed = parsed.set(database=str(path))
        self.url = parsed
        try:
            self._engine: AsyncEngine = create_async_engine(parsed, **kwargs)
        except ImportError as err:
            extra = " (pip install 'briefbot[postgres]')" if self.dialect == "postgresql" else ""
            raise ConfigError(
                f"the database driver for {self.display_url} is not installed: "
                f"{err.name or err}{extra}"
            ) from None
        except SQLAlchemyError as err:
            raise ConfigError(f"cannot use the database {self.display_url}: {err}") from None
        if self.dialect == "sqlite":
            _configure_sqlite(self._engine, wal=not memory)

    @property
    def display_url(self) -> str:
        """The database URL with its password hidden, to print or log."""
        return hide_password(self.url.render_as_string(hide_password=False))

    # -- lifecycle -------------------------------------------------------------------
    async def open(self) -> None:
        """Create or upgrade the schema to the newest migration. Raises
        :class:`StorageError` naming the database (password hidden) and what to do when
        it cannot be reached or read."""
        try:
            async with self._tx() as conn:
                await conn.run_sync(_upgrade_to_head)
        except StorageError as err:
            await _dispose_quietly(self._engine)
            cause = err.__cause__
            if isinstance(cause, SQLAlchemyError | OSError):
                raise StorageError(self._open_failure(cause)) from cause
            raise  # already says what to do (e.g. a schema from a newer Briefbot)
        except Exception as err:
            await _dispose_quietly(self._engine)
            if isinstance(err, SQLAlchemyError | OSError) or _is_driver_error(err):
                raise StorageError(self._open_failure(err)) from err
            raise

    async def close(self) -> None:
        await self._engine.dispose()

    @property
    def engine(self) -> AsyncEngine:
        return self._engine

    @asynccontextmanager
    async def _tx(self) -> AsyncIterator[AsyncConnection]:
        """One transaction (committed on success, rolled back on error)."""
        try:
            if self._lock is not None:
                async with self._lock, self._engine.begin() as conn:
                    yield conn
            else:
                async with self._engine.begin() as conn:
                    yield conn
        except (IntegrityError, ProgrammingError, DataError, NotSupportedError):
            raise  # a constraint the caller handles, or a bug: not the database failing
        except (OperationalError, InterfaceError, DatabaseError) as err:
            # locked, disk full, connection lost, a corrupt file
            raise StorageError(f"The database failed: {err.orig or err}") from err
        except OSError as err:  # the connection to the server failed
            raise StorageError(f"The database failed: {err.strerror or err}") from err

    def _open_failure(self, err: BaseException) -> str:
        """What went wrong opening the database, and what to do."""
        text = str(getattr(err, "orig", None) or err).strip()
        detail = (text.splitlines() or [type(err).__name__])[0]
        if self.dialect == "sqlite":
            where = f"the database file {self.url.database}"
            if "not a database" in detail or "malformed" in detail:
                return (
                    f"Cannot read {where}: it is not a valid SQLite database ({detail}). "
                    "Restore it from a backup, or move it aside so that Briefbot creates "
                    "a new one."
                )
            return (
                f"Cannot open {where} ({detail}): check that the file and its directory "
                "are writable, or choose another (storage.data_dir)."
            )
        where = f"the database {self.display_url}"
        if isinstance(err, OSError):
            return (
                f"Cannot connect to {where} ({detail}): is the PostgreSQL server running, "
                "and are the host and port in storage.database_url right?"
            )
        return (
            f"Cannot open {where} ({detail}): check the server, the user, the password and "
            "the database name in storage.database_url."
        )

    def _insert(self, table: Table) -> Any:
        """An INSERT that supports ``on_conflict_do_nothing`` on this dialect."""
        if self.dialect == "postgresql":
            return postgresql.insert(table)
        return sqlite.insert(table)

    # -- feeds -----------------------------------------------------------------------
    async def sync_config_feeds(self, sources: Sequence[FeedSource]) -> None:
        wanted = {s.url: s for s in sources}  # a URL listed twice: the last one wins
        now = _now()
        async with self._tx() as conn:
            rows = (await conn.execute(select(feeds.c.id, feeds.c.url, feeds.c.origin))).all()
            existing = {r.url: r for r in rows}
            for url, src in wanted.items():
                values = {"name": src.name, "lang": src.lang, "origin": "config", "active": True}
                if url in existing:
                    await conn.execute(
                        update(feeds).where(feeds.c.id == existing[url].id).values(**values)
                    )
                else:
                    await conn.execute(insert(feeds).values(url=url, created_at=now, **values))
            gone = [r.id for r in rows if r.origin == "config" and r.url not in wanted]
            if gone:
                # retired from config: stays alive as a chat feed while a channel added it
                await conn.execute(
                    update(feeds)
                    .where(feeds.c.id.in_(gone))
                    .values(origin="chat", active=self._subscribed())
                )

    def _subscribed(self) -> ColumnElement[bool]:
        return exists().where(
            channel_feeds.c.feed_id == feeds.c.id, channel_feeds.c.state == "added"
        )

    def _in_channel(self, channel_id: int, feed: Any = None) -> ColumnElement[bool]:
        """The feed (``feeds`` row in the enclosing query, or the given alias of it) is
        in the channel's view."""
        feed = feeds if feed is None else feed

        def override(state: str) -> ColumnElement[bool]:
            return exists().where(
                channel_feeds.c.channel_id == channel_id,
                channel_feeds.c.feed_id == feed.c.id,
                channel_feeds.c.state == state,
            )

        return or_(and_(feed.c.origin == "config", ~override("removed")), override("added"))

    def _item_in_channel(self, channel_id: int) -> ColumnElement[bool]:
        """The item (``items`` row in the enclosing query) came from one of the channel's
        feeds, or was also carried by one (a sighting: the copy stored first may be from
        a feed the channel does not follow, and the story must not be missed)."""
        sighted_feed = feeds.alias("sighted_feed")
        sighted = exists().where(
            item_sightings.c.item_id == items.c.id,
            sighted_feed.c.id == item_sightings.c.feed_id,
            self._in_channel(channel_id, sighted_feed),
        )
        return or_(self._in_channel(channel_id), sighted)

    async def add_feed(self, source: FeedSource, *, channel_id: int | None) -> FeedState:
        async with self._tx() as conn:
            row = await self._feed_by_url(conn, source.url)
            if row is None:
                await conn.execute(
                    self._insert(feeds)
                    .values(
                        url=source.url,
                        name=source.name,
                        lang=source.lang,
                        origin="chat",
                        active=True,
                        created_at=_now(),
                    )
                    .on_conflict_do_nothing(index_elements=["url"])
                )
                row = await self._feed_by_url(conn, source.url)
                assert row is not None
            if channel_id is not None:
                await self._require_channel(conn, channel_id)
                if await self._channel_has_feed(conn, channel_id, row.id):
                    raise InputError(f"This channel already follows {row.name} ({row.url}).")
                await self._set_override(conn, channel_id, row.id, "added")
            if not row.active:
                await conn.execute(update(feeds).where(feeds.c.id == row.id).values(active=True))
                row = await self._feed_by_url(conn, source.url)
                assert row is not None
            return _feed_state(row)

    async def remove_feed(self, channel_id: int, feed_id: int) -> None:
        async with self._tx() as conn:
            row = (await conn.execute(select(feeds).where(feeds.c.id == feed_id))).first()
            if row is None:
                raise NotFoundError(f"There is no feed #{feed_id}.")
            if not await self._channel_has_feed(conn, channel_id, feed_id):
                raise NotFoundError(f"This channel does not follow {row.name} ({row.url}).")
            if row.origin == "config":
                await self._set_override(conn, channel_id, feed_id, "removed")
            else:
                await conn.execute(
                    delete(channel_feeds).where(
                        channel_feeds.c.channel_id == channel_id,
                        channel_feeds.c.feed_id == feed_id,
                    )
                )
                await conn.execute(
                    update(feeds).where(feeds.c.id == feed_id).values(active=self._subscribed())
                )

    async def _feed_by_url(self, conn: AsyncConnection, url: str) -> Row[Any] | None:
        return (await conn.execute(select(feeds).where(feeds.c.url == url))).first()

    async def _channel_has_feed(self, conn: AsyncConnection, channel_id: int, feed_id: int) -> bool:
        stmt = select(feeds.c.id).where(feeds.c.id == feed_id, self._in_channel(channel_id))
        return (await conn.execute(stmt)).first() is not None

    async def _set_override(
        self, conn: AsyncConnection, channel_id: int, feed_id: int, state: str
    ) -> None:
        stmt = self._insert(channel_feeds).values(
            channel_id=channel_id, feed_id=feed_id, state=state
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=["channel_id", "feed_id"], set_={"state": state}
        )
        await conn.execute(stmt)

    def _health_select(self) -> Any:
        counts = (
            select(items.c.feed_id, func.count().label("n")).group_by(items.c.feed_id).subquery()
        )
        return select(feeds, func.coalesce(counts.c.n, 0).label("item_count")).select_from(
            feeds.outerjoin(counts, counts.c.feed_id == feeds.c.id)
        )

    async def channel_feeds(self, channel_id: int) -> list[FeedHealth]:
        stmt = self._health_select().where(self._in_channel(channel_id))
        async with self._tx() as conn:
            rows = (await conn.execute(stmt.order_by(func.lower(feeds.c.name), feeds.c.id))).all()
        return [_feed_health(r) for r in rows]

    async def all_feeds(self) -> list[FeedHealth]:
        """Every active feed."""
        stmt = self._health_select().where(feeds.c.active.is_(True))
        async with self._tx() as conn:
            rows = (await conn.execute(stmt.order_by(func.lower(feeds.c.name), feeds.c.id))).all()
        return [_feed_health(r) for r in rows]

    async def feed_states(self) -> list[FeedState]:
        async with self._tx() as conn:
            rows = (
                await conn.execute(
                    select(feeds).where(feeds.c.active.is_(True)).order_by(feeds.c.id)
                )
            ).all()
        return [_feed_state(r) for r in rows]

    async def due_feeds(self, now: datetime) -> list[FeedState]:
        stmt = (
            select(feeds)
            .where(
                feeds.c.active.is_(True),
                or_(feeds.c.next_poll_at.is_(None), feeds.c.next_poll_at <= _utc(now)),
            )
            .order_by(feeds.c.id)
        )
        async with self._tx() as conn:
            rows = (await conn.execute(stmt)).all()
        return [_feed_state(r) for r in rows]

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
    ) -> None:
        """Resets the failure count. ``title`` (the feed's own title) replaces the name
        only while the name is still the bare URL."""
        values: dict[str, Any] = {
            "last_success_at": _utc(at),
            "next_poll_at": _utc(next_poll_at),
            "etag": etag,
            "last_modified": last_modified,
            "content_hash": content_hash,
            "consecutive_failures": 0,
        }
        if title and title.strip():
            values["name"] = case((feeds.c.name == feeds.c.url, title.strip()), else_=feeds.c.name)
        async with self._tx() as conn:
            result = await conn.execute(update(feeds).where(feeds.c.id == feed_id).values(values))
            if result.rowcount == 0:
                raise NotFoundError(f"There is no feed #{feed_id}.")

    async def record_fetch_failure(
        self, feed_id: int, *, at: datetime, next_poll_at: datetime, error: str
    ) -> None:
        at = _utc(at)
        error = error[:2000]
        async with self._tx() as conn:
            result = await conn.execute(
                update(feeds)
                .where(feeds.c.id == feed_id)
                .values(
                    consecutive_failures=feeds.c.consecutive_failures + 1,
                    last_error=error,
                    last_error_at=at,
                    next_poll_at=_utc(next_poll_at),
                )
            )
            if result.rowcount == 0:
                raise NotFoundError(f"There is no feed #{feed_id}.")
            await conn.execute(insert(feed_errors).values(feed_id=feed_id, at=at, error=error))
            await conn.execute(
                delete(feed_errors).where(
                    feed_errors.c.feed_id == feed_id,
                    feed_errors.c.at < at - FEED_ERROR_RETENTION,
                )
            )

    async def failures_between(self, start: datetime, end: datetime) -> list[FeedHealth]:
        failed = exists().where(
            feed_errors.c.feed_id == feeds.c.id,
            feed_errors.c.at >= _utc(start),
            feed_errors.c.at < _utc(end),
        )
        stmt = self._health_select().where(failed).order_by(func.lower(feeds.c.name), feeds.c.id)
        async with self._tx() as conn:
            rows = (await conn.execute(stmt)).all()
        return [_feed_health(r) for r in rows]

    # -- items -----------------------------------------------------------------------
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
        fetched_at = _utc(fetched_at)
        batch = [
            (dataclasses.replace(item, published=_utc_opt(item.published)), _clean_keys(keys))
            for item, keys in items_
        ]
        if not batch:
            return []
        all_keys = list(dict.fromkeys(k for _, keys in batch for k in keys))
        async with self._tx() as conn:
            if self.dialect == "postgresql":
                # one item writer at a time (across processes): concurrent polls would
                # otherwise wait on each other's uncommitted keys and could deadlock.
                # The key insert below still says ON CONFLICT DO NOTHING and checks what
                # it claimed, so a writer that skips this lock cannot cause duplicates.
                await conn.execute(select(func.pg_advisory_xact_lock(_PG_ITEMS_LOCK)))
            known = await self._known_keys(conn, feed_id, all_keys)
            new: list[tuple[Item, list[str]]] = []
            in_batch: set[str] = set()
            sightings: dict[int, dict[str, Any]] = {}
            for item, keys in batch:
                hit = next((known[k] for k in keys if k in known), None)
                if hit is not None:
                    _add_sighting(sightings, hit, feed_id, item, fetched_at)
                elif not any(k in in_batch for k in keys):
                    in_batch.update(keys)
                    new.append((item, keys))
            stored, lost = await self._insert_new(conn, feed_id, new, fetched_at)
            if lost:  # another writer stored them since we looked: credit its items
                lost_keys = [k for _, keys in lost for k in keys]
                won = await self._known_keys(conn, feed_id, lost_keys)
                for item, keys in lost:
                    hit = next((won[k] for k in keys if k in won), None)
                    if hit is not None:
                        _add_sighting(sightings, hit, feed_id, item, fetched_at)
            if sightings:
                await conn.execute(
                    self._insert(item_sightings).on_conflict_do_nothing(
                        index_elements=["item_id", "feed_id"]
                    ),
                    list(sightings.values()),
                )
        return stored

    async def _known_keys(
        self, conn: AsyncConnection, feed_id: int, keys: Sequence[str]
    ) -> dict[str, _KnownKey]:
        """The stored keys among ``keys``: key -> the item that holds it (its feed, and
        whether ``feed_id`` already has a sighting of it: asked only when some of the
        items are another feed's, so a re-poll of a feed costs one SELECT)."""
        rows: list[Row[Any]] = []
        for i in range(0, len(keys), _KEY_CHUNK):
            stmt = (
                select(item_keys.c.key, item_keys.c.item_id, items.c.feed_id)
                .select_from(item_keys.join(items, items.c.id == item_keys.c.item_id))
                .where(item_keys.c.key.in_(keys[i : i + _KEY_CHUNK]))
            )
            rows.extend(await conn.execute(stmt))
        others = list(dict.fromkeys(r.item_id for r in rows if r.feed_id != feed_id))
        sighted: set[int] = set()
        for i in range(0, len(others), _KEY_CHUNK):
            stmt = select(item_sightings.c.item_id).where(
                item_sightings.c.feed_id == feed_id,
                item_sightings.c.item_id.in_(others[i : i + _KEY_CHUNK]),
            )
            sighted.update((await conn.execute(stmt)).scalars())
        return {r.key: _KnownKey(r.item_id, r.feed_id, r.item_id in sighted) for r in rows}

    async def _insert_new(
        self,
        conn: AsyncConnection,
        feed_id: int,
        new: Sequence[tuple[Item, list[str]]],
        fetched_at: datetime,
    ) -> tuple[list[StoredItem], list[tuple[Item, list[str]]]]:
        """Insert the items and claim their keys: (stored items in order, items that
        lost a key to another writer, which are removed again)."""
        if not new:
            return [], []
        rows: list[dict[str, Any]] = []
        for n, (item, _) in enumerate(new, 1):
            rows.append(
                {
                    "feed_id": feed_id,
                    "guid": item.guid,
                    "link": item.link,
                    "canonical_link": item.canonical_link,
                    "title": item.title,
                    "summary": item.summary,
                    "title_plain": plain(item.title),
                    "summary_plain": plain(item.summary),
                    "published_at": item.published,
                    "fetched_at": fetched_at,
                    "source": item.source,
                    "lang": item.lang,
                }
            )
            if n % _PLAIN_YIELD == 0:
                # plain() is CPU work on the loop thread (~0.1 ms a long item): let other
                # tasks run now and then rather than once per batch
                await asyncio.sleep(0)
        ids: list[int]
        if self.dialect == "sqlite":
            # SQLAlchemy cannot batch an INSERT .. RETURNING in parameter order on SQLite
            # (it falls back to a statement per row). The transaction holds the write
            # lock (BEGIN IMMEDIATE), so number the rows as SQLite itself would: after
            # the largest id.
            top = await conn.execute(select(func.coalesce(func.max(items.c.id), 0)))
            first = int(top.scalar_one()) + 1
            ids = list(range(first, first + len(rows)))
            for row, item_id in zip(rows, ids, strict=True):
                row["id"] = item_id
            await conn.execute(insert(items), rows)
        else:
            result = await conn.execute(
                insert(items).returning(items.c.id, sort_by_parameter_order=True), rows
            )
            ids = list(result.scalars())
        key_rows = [
            {"key": k, "item_id": i} for (_, keys), i in zip(new, ids, strict=True) for k in keys
        ]
        claimed: set[str] = set()
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
        stored: list[StoredItem] = []
        lost: list[tuple[Item, list[str]]] = []
        lost_ids: list[int] = []
        for (item, keys), item_id in zip(new, ids, strict=True):
            if all(k in claimed for k in keys):
                stored.append(StoredItem(item_id, feed_id, item, fetched_at))
            else:
                lost.append((item, keys))
                lost_ids.append(item_id)
        if lost_ids:
            await conn.execute(delete(item_keys).where(item_keys.c.item_id.in_(lost_ids)))
            await conn.execute(delete(items).where(items.c.id.in_(lost_ids)))
        return stored, lost

    async def add_matches(
        self, item_id: int, matches_: Sequence[Match], *, scope: int | None = None
    ) -> None:
        """The first match per entry wins; a (item, scope, entry) already stored is kept."""
        await self.add_matches_bulk([(item_id, matches_)], scope=scope)

    async def add_matches_bulk(
        self, batch: Sequence[tuple[int, Sequence[Match]]], *, scope: int | None = None
    ) -> None:
        """:meth:`add_matches` for many items: one transaction, one executemany."""
        scope_value = DEFAULT_SCOPE if scope is None else scope
        rows: dict[tuple[int, str], dict[str, Any]] = {}
        for item_id, found in batch:
            for m in found:
                rows.setdefault(
                    (item_id, m.entry_id),
                    {
                        "item_id": item_id,
                        "scope": scope_value,
                        "entry_id": m.entry_id,
                        "alias": m.alias,
                        "field": str(m.field),
                    },
                )
        if not rows:
            return
        stmt = self._insert(matches).on_conflict_do_nothing(
            index_elements=["item_id", "scope", "entry_id"]
        )
        async with self._tx() as conn:
            await conn.execute(stmt, list(rows.values()))

    async def sightings(self, item_ids: Sequence[int]) -> dict[int, tuple[Sighting, ...]]:
        async with self._tx() as conn:
            return await self._sightings(conn, item_ids)

    async def _sightings(
        self, conn: AsyncConnection, item_ids: Iterable[int]
    ) -> dict[int, tuple[Sighting, ...]]:
        ids = list(dict.fromkeys(item_ids))
        found: dict[int, list[Sighting]] = {}
        for i in range(0, len(ids), _KEY_CHUNK):
            stmt = (
                select(item_sightings)
                .where(item_sightings.c.item_id.in_(ids[i : i + _KEY_CHUNK]))
                .order_by(item_sightings.c.seen_at, item_sightings.c.id)
            )
            for r in await conn.execute(stmt):
                found.setdefault(r.item_id, []).append(
                    Sighting(feed_id=r.feed_id, source=r.source, link=r.link, seen_at=r.seen_at)
                )
        return {k: tuple(v) for k, v in found.items()}

    def _item_select(self, *extra: Any) -> Any:
        return select(items, feeds.c.url.label("feed_url"), *extra).select_from(
            items.join(feeds, feeds.c.id == items.c.feed_id)
        )

    @staticmethod
    def _when() -> ColumnElement[datetime]:
        return func.coalesce(items.c.published_at, items.c.fetched_at)

    async def items_between(self, start: datetime, end: datetime) -> list[StoredItem]:
        start, end = _utc(start), _utc(end)
        stmt = (
            self._item_select()
            .where(
                or_(
                    and_(items.c.fetched_at >= start, items.c.fetched_at < end),
                    and_(items.c.published_at >= start, items.c.published_at < end),
                )
            )
            .order_by(self._when().desc(), items.c.id.desc())
        )
        async with self._tx() as conn:
            rows = (await conn.execute(stmt)).all()
        return [_stored(r) for r in rows]

    async def matched_items(
        self, channel_id: int, start: datetime, end: datetime, *, entry_id: str | None = None
    ) -> list[MatchedItem]:
        """Newest first (by published, else fetched); matches sorted by entry id; with
        each item's sightings (other feeds that carried it). Default matches are
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
            items.c.fetched_at >= _utc(start),
            items.c.fetched_at < _utc(end),
            self._item_in_channel(channel_id),
            visible,
        ]
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
            .order_by(self._when().desc(), items.c.id.desc(), matches.c.entry_id)
        )
        async with self._tx() as conn:
            rows = (await conn.execute(stmt)).all()
            seen = await self._sightings(conn, (r.id for r in rows))
        out: list[MatchedItem] = []
        current: StoredItem | None = None
        found: list[Match] = []
        for r in rows:
            if current is None or current.id != r.id:
                if current is not None:
                    out.append(MatchedItem(current, tuple(found), seen.get(current.id, ())))
                current, found = _stored(r), []
            found.append(Match(r.m_entry, r.m_alias, Field(r.m_field)))
        if current is not None:
            out.append(MatchedItem(current, tuple(found), seen.get(current.id, ())))
        return out

    async def search(
        self,
        query: str,
        *,
        since: datetime | None,
        limit: int = 10,
        fetched_since: datetime | None = None,
    ) -> list[SearchHit]:
        """Every word must occur (the last one also as a prefix, on SQLite); words in
        double quotes must occur together, in that order (a phrase). Ranked by bm25 /
        ts_rank with titles weighted up, then newest first. ``rank``: higher is better.
        ``since`` filters on published-else-fetched time, ``fetched_since`` on fetched
        time. CJK queries use substring matching (LIKE), as word tokenizers cannot split
        CJK text."""
        query = normalize(query)
        if len(query) > MAX_QUERY_CHARS:
            raise InputError(f"That search is too long (at most {MAX_QUERY_CHARS} characters).")
        terms = self._search_terms(query)
        if not terms:
            raise InputError("Give at least one word to search for.")
        limit = max(1, min(int(limit), 100))
        conditions: list[ColumnElement[bool]] = []
        if since is not None:
            conditions.append(self._when() >= _utc(since))
        if fetched_since is not None:
            conditions.append(items.c.fetched_at >= _utc(fetched_since))
        if _CJK.search(query):
            stmt = self._like_search(terms)
        elif self.dialect == "sqlite":
            stmt = self._fts5_search(terms)
        else:
            stmt = self._pg_search(terms)
        stmt = stmt.where(*conditions).order_by(
            literal_column("score").desc(), self._when().desc(), items.c.id.desc()
        )
        async with self._tx() as conn:
            try:
                rows = (await conn.execute(stmt.limit(limit))).all()
            except OperationalError as err:  # defensive: quoting should prevent this
                raise InputError(f"Cannot search for {query!r}.") from err
        return [SearchHit(_stored(r), float(r.score)) for r in rows]

    @staticmethod
    def _search_terms(query: str) -> list[tuple[str, bool]]:
        """The (normalized) query as ``(text, is_phrase)`` terms, in order: the words
        inside a pair of double quotes are one phrase; an unpaired quote is an ordinary
        character; a word without any letter or digit is dropped."""

        def words(text: str) -> list[str]:
            return [w for w in text.split() if _WORDCHAR.search(w)]

        terms: list[tuple[str, bool]] = []
        pos = 0
        for m in re.finditer(r'"([^"]*)"', query):
            terms.extend((w, False) for w in words(query[pos : m.start()]))
            phrase = words(m.group(1))
            if phrase:
                terms.append((" ".join(phrase), True))
            pos = m.end()
        terms.extend((w, False) for w in words(query[pos:]))
        return terms

    def _fts5_search(self, terms: list[tuple[str, bool]]) -> Any:
        # each term is an FTS5 string (a phrase of the tokens in it); a bare last word
        # also matches as a prefix (search as you type)
        parts = ['"' + text.replace('"', '""') + '"' for text, _ in terms]
        if not terms[-1][1]:
            parts[-1] += "*"
        match = " ".join(parts)
        rank = (-func.bm25(literal_column("items_fts"), 3.0, 1.0)).label("score")
        return (
            self._item_select(rank)
            .join(_ITEMS_FTS, _ITEMS_FTS.c.rowid == items.c.id)
            .where(literal_column("items_fts").op("MATCH")(match))
        )

    def _pg_search(self, terms: list[tuple[str, bool]]) -> Any:
        vector: ColumnElement[Any] = literal_column(_PG_TSVECTOR)
        english: ColumnElement[Any] = literal_column("'english'")
        words = " ".join(text for text, phrase in terms if not phrase)
        queries: list[Any] = [func.plainto_tsquery(english, words)] if words else []
        queries.extend(func.phraseto_tsquery(english, text) for text, phrase in terms if phrase)
        tsquery = queries[0]
        for more in queries[1:]:
            tsquery = tsquery.op("&&")(more)
        weighted = func.setweight(
            func.to_tsvector(english, items.c.title_plain),
            literal_column("'A'"),
        ).op("||")(func.to_tsvector(english, items.c.summary_plain))
        rank = func.ts_rank(weighted, tsquery).label("score")
        return self._item_select(rank).where(vector.op("@@")(tsquery))

    def _like_search(self, terms: list[tuple[str, bool]]) -> Any:
        conditions = []
        score: Any = literal_column("0")
        for text, _ in terms:
            pattern = "%" + re.sub(r"([\\%_])", r"\\\1", text) + "%"
            in_title = items.c.title_plain.ilike(pattern, escape="\\")
            in_summary = items.c.summary_plain.ilike(pattern, escape="\\")
            conditions.append(or_(in_title, in_summary))
            score = score + case((in_title, 3.0), else_=0.0) + case((in_summary, 1.0), else_=0.0)
        return self._item_select(score.label("score")).where(*conditions)

    async def count_items_since(self, since: datetime) -> int:
        stmt = select(func.count()).select_from(items).where(items.c.fetched_at >= _utc(since))
        async with self._tx() as conn:
            return int((await conn.execute(stmt)).scalar_one())

    # -- channels --------------------------------------------------------------------
    async def get_channel(
        self,
        platform: str,
        external_id: str,
        *,
        guild_id: str | None = None,
        name: str | None = None,
        default_tz: str = "UTC",
    ) -> ChannelRecord:
        """Get or create; a given guild_id / name updates the stored one."""
        where = and_(channels.c.platform == platform, channels.c.external_id == external_id)
        async with self._tx() as conn:
            await conn.execute(
                self._insert(channels)
                .values(
                    platform=platform,
                    external_id=external_id,
                    guild_id=guild_id,
                    name=name,
                    timezone=default_tz,
                    group_by="entry",
                    created_at=_now(),
                )
                .on_conflict_do_nothing(index_elements=["platform", "external_id"])
            )
            row = (await conn.execute(select(channels).where(where))).one()
            changes = {
                k: v
                for k, v in (("guild_id", guild_id), ("name", name))
                if v is not None and getattr(row, k) != v
            }
            if changes:
                await conn.execute(update(channels).where(where).values(**changes))
                row = (await conn.execute(select(channels).where(where))).one()
        return _channel(row)

    async def channel_by_id(self, channel_id: int) -> ChannelRecord:
        async with self._tx() as conn:
            return _channel(await self._require_channel(conn, channel_id))

    async def _require_channel(self, conn: AsyncConnection, channel_id: int) -> Row[Any]:
        row = (await conn.execute(select(channels).where(channels.c.id == channel_id))).first()
        if row is None:
            raise NotFoundError(f"There is no channel #{channel_id}.")
        return row

    async def all_channels(self, platform: str | None = None) -> list[ChannelRecord]:
        stmt = select(channels).order_by(channels.c.id)
        if platform is not None:
            stmt = stmt.where(channels.c.platform == platform)
        async with self._tx() as conn:
            return [_channel(r) for r in (await conn.execute(stmt)).all()]

    async def set_schedule(
        self, channel_id: int, *, time: str | None, timezone: str | None, days: str | None
    ) -> ChannelRecord:
        """``time`` "HH:MM" (24 h) or None to clear the schedule (and its days);
        ``timezone`` None keeps the current one. Bad values raise InputError."""
        values: dict[str, Any] = {}
        if time is None:
            values.update(digest_time=None, digest_days=None)
        else:
            time = time.strip()
            if not _TIME.match(time):
                raise InputError(f"{time!r} is not a time of day: use HH:MM, e.g. 08:30.")
            values.update(digest_time=time, digest_days=(days or "").strip().lower() or None)
        if timezone is not None:
            values["timezone"] = _check_timezone(timezone)
        async with self._tx() as conn:
            await self._require_channel(conn, channel_id)
            await conn.execute(update(channels).where(channels.c.id == channel_id).values(values))
            return _channel(await self._require_channel(conn, channel_id))

    async def set_group_by(self, channel_id: int, group_by: str) -> ChannelRecord:
        if group_by not in _GROUP_BY:
            raise InputError(f"Group by {' or '.join(_GROUP_BY)}, not {group_by!r}.")
        return await self._update_channel(channel_id, group_by=group_by)

    async def set_paused(self, channel_id: int, reason: str | None) -> None:
        await self._update_channel(channel_id, paused_reason=reason)

    async def set_last_digest_at(self, channel_id: int, at: datetime) -> None:
        await self._update_channel(channel_id, last_digest_at=_utc(at))

    async def _update_channel(self, channel_id: int, **values: Any) -> ChannelRecord:
        async with self._tx() as conn:
            await self._require_channel(conn, channel_id)
            await conn.execute(update(channels).where(channels.c.id == channel_id).values(values))
            return _channel(await self._require_channel(conn, channel_id))

    async def channel_entries(self, channel_id: int) -> list[ChannelEntryRecord]:
        stmt = (
            select(channel_entries)
            .where(channel_entries.c.channel_id == channel_id)
            .order_by(channel_entries.c.entry_id)
        )
        async with self._tx() as conn:
            rows = (await conn.execute(stmt)).all()
        return [ChannelEntryRecord(r.entry_id, dict(r.definition), r.mode) for r in rows]

    async def disabled_entries(self, channel_id: int) -> set[str]:
        stmt = select(channel_disabled.c.entry_id).where(
            channel_disabled.c.channel_id == channel_id
        )
        async with self._tx() as conn:
            return set((await conn.execute(stmt)).scalars())

    async def put_channel_entry(
        self, channel_id: int, entry_id: str, definition: dict[str, Any], mode: str
    ) -> None:
        """Add or replace an own entry. If its definition changed, the channel's stored
        matches for it are dropped (re-match recent items with ``items_between``)."""
        if mode not in _MODES:
            raise InputError(f"Mode must be {' or '.join(_MODES)}, not {mode!r}.")
        try:
            definition = json.loads(json.dumps(definition))
        except (TypeError, ValueError) as err:
            raise InputError(f"Entry {entry_id!r} cannot be stored: {err}") from None
        key = and_(
            channel_entries.c.channel_id == channel_id, channel_entries.c.entry_id == entry_id
        )
        async with self._tx() as conn:
            await self._require_channel(conn, channel_id)
            old = (await conn.execute(select(channel_entries.c.definition).where(key))).first()
            if old is None:
                await conn.execute(
                    insert(channel_entries).values(
                        channel_id=channel_id, entry_id=entry_id, definition=definition, mode=mode
                    )
                )
                return
            await conn.execute(
                update(channel_entries).where(key).values(definition=definition, mode=mode)
            )
            if old.definition != definition:
                await self._drop_scoped_matches(conn, channel_id, entry_id)

    async def _drop_scoped_matches(
        self, conn: AsyncConnection, channel_id: int, entry_id: str
    ) -> None:
        await conn.execute(
            delete(matches).where(matches.c.scope == channel_id, matches.c.entry_id == entry_id)
        )

    async def remove_channel_entry(self, channel_id: int, entry_id: str) -> None:
        """If the channel has an own entry ``entry_id``, it is deleted (with its matches;
        a default entry of that id shows again). Otherwise ``entry_id`` is taken to be a
        default entry (the caller checks that it exists) and is disabled."""
        key = and_(
            channel_entries.c.channel_id == channel_id, channel_entries.c.entry_id == entry_id
        )
        async with self._tx() as conn:
            await self._require_channel(conn, channel_id)
            result = await conn.execute(delete(channel_entries).where(key))
            if result.rowcount:
                await self._drop_scoped_matches(conn, channel_id, entry_id)
                return
            await conn.execute(
                self._insert(channel_disabled)
                .values(channel_id=channel_id, entry_id=entry_id)
                .on_conflict_do_nothing(index_elements=["channel_id", "entry_id"])
            )

    async def enable_default_entry(self, channel_id: int, entry_id: str) -> None:
        async with self._tx() as conn:
            await conn.execute(
                delete(channel_disabled).where(
                    channel_disabled.c.channel_id == channel_id,
                    channel_disabled.c.entry_id == entry_id,
                )
            )

    # -- deliveries ------------------------------------------------------------------
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
        """``item_ids``: the items the delivery carries (what ``alerted`` answers from)."""
        try:
            payload = json.loads(json.dumps(payload))
        except (TypeError, ValueError) as err:
            raise TypeError(f"delivery payload is not JSON-serialisable: {err}") from None
        stmt = (
            self._insert(deliveries)
            .values(
                channel_id=channel_id,
                kind=kind,
                key=key,
                payload=payload,
                status="pending",
                nonce=_nonce(),
                attempts=0,
                message_ids=[],
                created_at=_utc(at),
            )
            .on_conflict_do_nothing(index_elements=["channel_id", "key"])
            .returning(*deliveries.c)
        )
        ids = list(dict.fromkeys(item_ids))
        async with self._tx() as conn:
            row = (await conn.execute(stmt)).first()
            if row is None:
                return None
            if ids:
                await conn.execute(
                    insert(delivery_items),
                    [{"delivery_id": row.id, "item_id": i} for i in ids],
                )
        return _delivery(row)

    async def get_delivery(self, channel_id: int, key: str) -> Delivery | None:
        stmt = select(deliveries).where(
            deliveries.c.channel_id == channel_id, deliveries.c.key == key
        )
        async with self._tx() as conn:
            row = (await conn.execute(stmt)).first()
        return None if row is None else _delivery(row)

    async def mark_sent(
        self, delivery_id: int, *, at: datetime, message_ids: Sequence[str]
    ) -> None:
        await self._update_delivery(
            delivery_id,
            status="sent",
            sent_at=_utc(at),
            message_ids=[str(m) for m in message_ids],
            attempts=deliveries.c.attempts + 1,
        )

    async def mark_failed(self, delivery_id: int, *, error: str, permanent: bool) -> None:
        values: dict[str, Any] = {"last_error": error[:2000], "attempts": deliveries.c.attempts + 1}
        if permanent:
            values["status"] = "failed"
        await self._update_delivery(delivery_id, **values)

    async def record_progress(self, delivery_id: int, message_ids: Sequence[str]) -> None:
        await self._update_delivery(delivery_id, message_ids=[str(m) for m in message_ids])

    async def _update_delivery(self, delivery_id: int, **values: Any) -> None:
        async with self._tx() as conn:
            result = await conn.execute(
                update(deliveries).where(deliveries.c.id == delivery_id).values(values)
            )
            if result.rowcount == 0:
                raise NotFoundError(f"There is no delivery #{delivery_id}.")

    async def pending_deliveries(self, channel_id: int | None = None) -> list[Delivery]:
        stmt = select(deliveries).where(deliveries.c.status == "pending")
        if channel_id is not None:
            stmt = stmt.where(deliveries.c.channel_id == channel_id)
        stmt = stmt.order_by(deliveries.c.created_at, deliveries.c.id)
        async with self._tx() as conn:
            return [_delivery(r) for r in (await conn.execute(stmt)).all()]

    async def alerted(self, channel_id: int, item_ids: Sequence[int]) -> set[int]:
        """Items carried by any ``alert`` delivery of the channel, whatever its status."""
        ids = list(dict.fromkeys(item_ids))
        found: set[int] = set()
        async with self._tx() as conn:
            for i in range(0, len(ids), _KEY_CHUNK):
                stmt = (
                    select(delivery_items.c.item_id)
                    .join(deliveries, deliveries.c.id == delivery_items.c.delivery_id)
                    .where(
                        deliveries.c.channel_id == channel_id,
                        deliveries.c.kind == "alert",
                        delivery_items.c.item_id.in_(ids[i : i + _KEY_CHUNK]),
                    )
                )
                found.update((await conn.execute(stmt)).scalars())
        return found


# -- helpers -------------------------------------------------------------------------


def _configure_sqlite(engine: AsyncEngine, *, wal: bool) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # let SQLAlchemy, not the driver, start transactions (see _on_begin)
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=15000")
        if wal:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


async def _dispose_quietly(engine: AsyncEngine) -> None:
    # already failing: the first error is the one to report
    with contextlib.suppress(Exception):
        await engine.dispose()


def _is_driver_error(err: BaseException) -> bool:
    """An exception of the database driver that SQLAlchemy passed through unwrapped
    (asyncpg raises its own errors while connecting: a wrong password or database)."""
    return type(err).__module__.split(".")[0] in ("asyncpg", "aiosqlite", "sqlite3")


def _upgrade_to_head(connection: Connection) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["connection"] = connection
    try:
        command.upgrade(cfg, "head")
    except CommandError as err:
        raise StorageError(
            f"Cannot upgrade the database schema ({err}). Was it created by a newer "
            "Briefbot? Upgrade Briefbot or point it at another database."
        ) from err


def _clean_keys(keys: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(k for k in keys if k))


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


def _check_timezone(name: str) -> str:
    name = name.strip()
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InputError(
            f"Unknown timezone {name!r}: use an IANA name like Europe/Berlin or Asia/Shanghai."
        ) from None
    return name


def _feed_state(r: Row[Any]) -> FeedState:
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
        origin=r.origin,
    )


def _feed_health(r: Row[Any]) -> FeedHealth:
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


def _stored(r: Row[Any]) -> StoredItem:
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


def _channel(r: Row[Any]) -> ChannelRecord:
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
        group_by=r.group_by,
    )


def _delivery(r: Row[Any]) -> Delivery:
    return Delivery(
        id=r.id,
        channel_id=r.channel_id,
        kind=r.kind,
        key=r.key,
        payload=r.payload,
        status=r.status,
        nonce=r.nonce,
        created_at=r.created_at,
        sent_at=r.sent_at,
        attempts=r.attempts,
        last_error=r.last_error,
        message_ids=list(r.message_ids or []),
    )


def _conforms(storage: SqlStorage) -> Storage:
    """Type-checks that SqlStorage implements the Storage Protocol."""
    return storage


__all__ = ["MIGRATIONS_DIR", "SqlStorage"]
