"""Feeds: config and chat feeds, a channel's subscriptions, fetch results and health."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Row,
    Select,
    bindparam,
    case,
    delete,
    exists,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.core.cycle import FetchSuccess
from bot.core.models import FeedHealth, FeedSource
from bot.core.ports import FeedOrigin, FeedState
from bot.errors import InputError, NotFoundError
from bot.storage.engine import StorageBase, as_utc, utc_now
from bot.storage.queries import (
    channel_feeds,
    feed_errors,
    feeds,
    in_channel,
    items,
    require_channel,
    subscribed,
    to_feed_health,
    to_feed_state,
)

#: how long individual fetch failures are kept (for digest headers and /status)
FEED_ERROR_RETENTION = timedelta(days=30)


class FeedsMixin(StorageBase):
    """The :class:`~bot.core.ports.FeedStore` part of :class:`~bot.storage.sql.SqlStorage`."""

    async def sync_config_feeds(self, sources: Sequence[FeedSource]) -> None:
        wanted = {s.url: s for s in sources}  # a URL listed twice: the last one wins
        now = utc_now()
        async with self._tx() as conn:
            rows = (await conn.execute(select(feeds.c.id, feeds.c.url, feeds.c.origin))).all()
            existing = {r.url: r for r in rows}
            for url, src in wanted.items():
                values = {
                    "name": src.name,
                    "lang": src.lang,
                    "origin": FeedOrigin.CONFIG,
                    "active": True,
                }
                if url in existing:
                    await conn.execute(
                        update(feeds).where(feeds.c.id == existing[url].id).values(**values)
                    )
                else:
                    await conn.execute(insert(feeds).values(url=url, created_at=now, **values))
            gone = [r.id for r in rows if r.origin == FeedOrigin.CONFIG and r.url not in wanted]
            if gone:
                # retired from config: stays alive as a chat feed while a channel added it
                await conn.execute(
                    update(feeds)
                    .where(feeds.c.id.in_(gone))
                    .values(origin=FeedOrigin.CHAT, active=subscribed())
                )

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
                        origin=FeedOrigin.CHAT,
                        active=True,
                        created_at=utc_now(),
                    )
                    .on_conflict_do_nothing(index_elements=["url"])
                )
                row = await self._feed_by_url(conn, source.url)
                assert row is not None
            if channel_id is not None:
                await require_channel(conn, channel_id)
                if await self._channel_has_feed(conn, channel_id, row.id):
                    raise InputError(f"This channel already follows {row.name} ({row.url}).")
                await self._set_override(conn, channel_id, row.id, "added")
            if not row.active:
                await conn.execute(update(feeds).where(feeds.c.id == row.id).values(active=True))
                row = await self._feed_by_url(conn, source.url)
                assert row is not None
            return to_feed_state(row)

    async def remove_feed(self, channel_id: int, feed_id: int) -> None:
        async with self._tx() as conn:
            row = (await conn.execute(select(feeds).where(feeds.c.id == feed_id))).first()
            if row is None:
                raise NotFoundError(f"There is no feed #{feed_id}.")
            if not await self._channel_has_feed(conn, channel_id, feed_id):
                raise NotFoundError(f"This channel does not follow {row.name} ({row.url}).")
            if row.origin == FeedOrigin.CONFIG:
                await self._set_override(conn, channel_id, feed_id, "removed")
            else:
                await conn.execute(
                    delete(channel_feeds).where(
                        channel_feeds.c.channel_id == channel_id,
                        channel_feeds.c.feed_id == feed_id,
                    )
                )
                await conn.execute(
                    update(feeds).where(feeds.c.id == feed_id).values(active=subscribed())
                )

    async def _feed_by_url(self, conn: AsyncConnection, url: str) -> Row[Any] | None:
        return (await conn.execute(select(feeds).where(feeds.c.url == url))).first()

    async def _channel_has_feed(self, conn: AsyncConnection, channel_id: int, feed_id: int) -> bool:
        stmt = select(feeds.c.id).where(feeds.c.id == feed_id, in_channel(channel_id))
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

    def _health_select(self) -> Select[Any]:
        counts = (
            select(items.c.feed_id, func.count().label("n")).group_by(items.c.feed_id).subquery()
        )
        return select(feeds, func.coalesce(counts.c.n, 0).label("item_count")).select_from(
            feeds.outerjoin(counts, counts.c.feed_id == feeds.c.id)
        )

    async def channel_feeds(self, channel_id: int) -> list[FeedHealth]:
        stmt = self._health_select().where(in_channel(channel_id))
        async with self._read() as conn:
            rows = (await conn.execute(stmt.order_by(func.lower(feeds.c.name), feeds.c.id))).all()
        return [to_feed_health(r) for r in rows]

    async def all_feeds(self) -> list[FeedHealth]:
        """Every active feed."""
        stmt = self._health_select().where(feeds.c.active.is_(True))
        async with self._read() as conn:
            rows = (await conn.execute(stmt.order_by(func.lower(feeds.c.name), feeds.c.id))).all()
        return [to_feed_health(r) for r in rows]

    async def feed_by_url(self, url: str) -> FeedHealth | None:
        """The active feed whose URL is exactly ``url`` (as stored: the form
        ``add_feed`` and ``sync_config_feeds`` were given), if any."""
        count = select(func.count()).where(items.c.feed_id == feeds.c.id).scalar_subquery()
        stmt = select(feeds, count.label("item_count")).where(
            feeds.c.url == url, feeds.c.active.is_(True)
        )
        async with self._read() as conn:
            row = (await conn.execute(stmt)).first()
        return None if row is None else to_feed_health(row)

    async def feed_states(self) -> list[FeedState]:
        async with self._read() as conn:
            rows = (
                await conn.execute(
                    select(feeds).where(feeds.c.active.is_(True)).order_by(feeds.c.id)
                )
            ).all()
        return [to_feed_state(r) for r in rows]

    async def due_feeds(self, now: datetime) -> list[FeedState]:
        stmt = (
            select(feeds)
            .where(
                feeds.c.active.is_(True),
                or_(feeds.c.next_poll_at.is_(None), feeds.c.next_poll_at <= as_utc(now)),
            )
            .order_by(feeds.c.id)
        )
        async with self._read() as conn:
            rows = (await conn.execute(stmt)).all()
        return [to_feed_state(r) for r in rows]

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
            "last_success_at": as_utc(at),
            "next_poll_at": as_utc(next_poll_at),
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

    async def record_fetch_successes(self, records: Sequence[FetchSuccess]) -> None:
        """:meth:`record_fetch_success` for many feeds: one transaction, one executemany
        (two when some records carry a feed title). A feed deleted since is skipped."""
        if not records:
            return
        async with self._tx() as conn:
            await write_fetch_successes(conn, records)

    async def record_fetch_failure(
        self, feed_id: int, *, at: datetime, next_poll_at: datetime, error: str
    ) -> None:
        at = as_utc(at)
        error = error[:2000]
        async with self._tx() as conn:
            result = await conn.execute(
                update(feeds)
                .where(feeds.c.id == feed_id)
                .values(
                    consecutive_failures=feeds.c.consecutive_failures + 1,
                    last_error=error,
                    last_error_at=at,
                    next_poll_at=as_utc(next_poll_at),
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
            feed_errors.c.at >= as_utc(start),
            feed_errors.c.at < as_utc(end),
        )
        stmt = self._health_select().where(failed).order_by(func.lower(feeds.c.name), feeds.c.id)
        async with self._read() as conn:
            rows = (await conn.execute(stmt)).all()
        return [to_feed_health(r) for r in rows]


async def write_fetch_successes(conn: AsyncConnection, records: Sequence[FetchSuccess]) -> None:
    """The fetch records of many feeds in the caller's transaction (see
    :meth:`FeedsMixin.record_fetch_successes`)."""
    if not records:
        return
    when = feeds.c.next_poll_at.type
    rows = [
        {
            "b_id": r.feed_id,
            "b_at": as_utc(r.at),
            "b_next": as_utc(r.next_poll_at),
            "b_etag": r.etag,
            "b_lm": r.last_modified,
            "b_hash": r.content_hash,
            "b_title": (r.title or "").strip(),
        }
        for r in records
    ]
    values: dict[str, Any] = {
        "last_success_at": bindparam("b_at", type_=when),
        "next_poll_at": bindparam("b_next", type_=when),
        "etag": bindparam("b_etag"),
        "last_modified": bindparam("b_lm"),
        "content_hash": bindparam("b_hash"),
        "consecutive_failures": 0,
    }
    where = feeds.c.id == bindparam("b_id")
    titled = [r for r in rows if r["b_title"]]
    untitled = [r for r in rows if not r["b_title"]]
    if untitled:
        await conn.execute(update(feeds).where(where).values(values), untitled)
    if titled:
        values["name"] = case(
            (feeds.c.name == feeds.c.url, bindparam("b_title")), else_=feeds.c.name
        )
        await conn.execute(update(feeds).where(where).values(values), titled)
