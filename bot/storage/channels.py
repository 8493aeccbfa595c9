"""Channels: get-or-create by platform id, digest schedule, grouping, pause, and the
channel's own watchlist entries (and the default ones it disabled)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.core.models import AlertMode
from bot.core.ports import ChannelEntryRecord, ChannelRecord, GroupBy
from bot.core.timeparse import check_time_of_day, check_timezone
from bot.errors import InputError
from bot.storage.engine import StorageBase, as_utc, utc_now
from bot.storage.queries import (
    channel_disabled,
    channel_entries,
    channels,
    matches,
    require_channel,
    to_channel,
)


class ChannelsMixin(StorageBase):
    """The :class:`~bot.core.ports.ChannelStore` part of :class:`~bot.storage.sql.SqlStorage`."""

    async def get_channel(
        self,
        platform: str,
        external_id: str,
        *,
        guild_id: str | None = None,
        name: str | None = None,
        default_tz: str = "UTC",
    ) -> ChannelRecord:
        """Get or create; a given guild_id / name updates the stored one. Every command
        calls it: a known channel with nothing to update costs only a read (which does
        not wait for the poller's writes)."""
        where = and_(channels.c.platform == platform, channels.c.external_id == external_id)
        async with self._read() as conn:
            row = (await conn.execute(select(channels).where(where))).first()
        if row is not None and all(
            v is None or getattr(row, k) == v for k, v in (("guild_id", guild_id), ("name", name))
        ):
            return to_channel(row)
        async with self._tx() as conn:
            await conn.execute(
                self._insert(channels)
                .values(
                    platform=platform,
                    external_id=external_id,
                    guild_id=guild_id,
                    name=name,
                    timezone=default_tz,
                    group_by=GroupBy.ENTRY,
                    created_at=utc_now(),
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
        return to_channel(row)

    async def channel_by_id(self, channel_id: int) -> ChannelRecord:
        async with self._read() as conn:
            return to_channel(await require_channel(conn, channel_id))

    async def all_channels(self, platform: str | None = None) -> list[ChannelRecord]:
        stmt = select(channels).order_by(channels.c.id)
        if platform is not None:
            stmt = stmt.where(channels.c.platform == platform)
        async with self._read() as conn:
            return [to_channel(r) for r in (await conn.execute(stmt)).all()]

    async def set_schedule(
        self, channel_id: int, *, time: str | None, timezone: str | None, days: str | None
    ) -> ChannelRecord:
        """``time`` "HH:MM" (24 h) or None to clear the schedule (and its days);
        ``timezone`` None keeps the current one. Bad values raise InputError."""
        values: dict[str, Any] = {}
        if time is None:
            values.update(digest_time=None, digest_days=None)
        else:
            # stored in the one canonical form the service writes: "8:30" is refused here
            if check_time_of_day(time) != time:
                raise InputError(f"{time!r} is not stored as a time of day: use HH:MM, e.g. 08:30.")
            values.update(digest_time=time, digest_days=(days or "").strip().lower() or None)
        if timezone is not None:
            values["timezone"] = check_timezone(timezone)
        async with self._tx() as conn:
            await require_channel(conn, channel_id)
            await conn.execute(update(channels).where(channels.c.id == channel_id).values(values))
            return to_channel(await require_channel(conn, channel_id))

    async def set_group_by(self, channel_id: int, group_by: str) -> ChannelRecord:
        if group_by not in tuple(GroupBy):
            raise InputError(f"Group by {' or '.join(GroupBy)}, not {group_by!r}.")
        return await self._update_channel(channel_id, group_by=GroupBy(group_by))

    async def set_paused(self, channel_id: int, reason: str | None) -> None:
        await self._update_channel(channel_id, paused_reason=reason)

    async def set_last_digest_at(self, channel_id: int, at: datetime) -> None:
        await self._update_channel(channel_id, last_digest_at=as_utc(at))

    async def _update_channel(self, channel_id: int, **values: Any) -> ChannelRecord:
        async with self._tx() as conn:
            await require_channel(conn, channel_id)
            await conn.execute(update(channels).where(channels.c.id == channel_id).values(values))
            return to_channel(await require_channel(conn, channel_id))

    async def channel_entries(self, channel_id: int) -> list[ChannelEntryRecord]:
        stmt = (
            select(channel_entries)
            .where(channel_entries.c.channel_id == channel_id)
            .order_by(channel_entries.c.entry_id)
        )
        async with self._read() as conn:
            rows = (await conn.execute(stmt)).all()
        return [ChannelEntryRecord(r.entry_id, dict(r.definition), AlertMode(r.mode)) for r in rows]

    async def disabled_entries(self, channel_id: int) -> set[str]:
        stmt = select(channel_disabled.c.entry_id).where(
            channel_disabled.c.channel_id == channel_id
        )
        async with self._read() as conn:
            return set((await conn.execute(stmt)).scalars())

    async def put_channel_entry(
        self, channel_id: int, entry_id: str, definition: dict[str, Any], mode: str
    ) -> None:
        """Add or replace an own entry. If its definition changed, the channel's stored
        matches for it are dropped (re-match recent items with ``items_between``)."""
        if mode not in tuple(AlertMode):
            raise InputError(f"Mode must be {' or '.join(AlertMode)}, not {mode!r}.")
        mode = AlertMode(mode)
        try:
            definition = json.loads(json.dumps(definition))
        except (TypeError, ValueError) as err:
            raise InputError(f"Entry {entry_id!r} cannot be stored: {err}") from None
        key = and_(
            channel_entries.c.channel_id == channel_id, channel_entries.c.entry_id == entry_id
        )
        async with self._tx() as conn:
            await require_channel(conn, channel_id)
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
            await require_channel(conn, channel_id)
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
