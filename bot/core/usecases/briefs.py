"""``/brief`` (the latest matched stories, now) and ``/search`` (stored stories by
words). Both answer from what is stored and are visible to the channel."""

from __future__ import annotations

from datetime import datetime, timedelta

from bot.core.clock import Clock
from bot.core.digest import format_time
from bot.core.format import item_title
from bot.core.models import StoredItem
from bot.core.options import ServiceOptions
from bot.core.ports import Storage
from bot.core.replies import ChannelContext, Reply
from bot.core.usecases.channels import Channels, resolve_entry
from bot.core.usecases.digests import Digests

SEARCH_LIMIT = 10


class Briefs:
    def __init__(
        self,
        *,
        storage: Storage,
        clock: Clock,
        options: ServiceOptions,
        channels: Channels,
        digests: Digests,
    ) -> None:
        self.storage = storage
        self.clock = clock
        self.options = options
        self.channels = channels
        self.digests = digests

    async def brief(self, ctx: ChannelContext, entry: str | None = None,
                    hours: int | None = None) -> Reply:
        channel = await self.channels.channel(ctx)
        view = await self.channels.watchlist(channel.id)
        chosen = resolve_entry(view, entry) if entry else None
        hours = hours or self.options.brief_hours
        end = self.clock.now()
        start = end - timedelta(hours=hours)
        # every matched item of the window, even for one entry: a story is clustered
        # (and credits its outlets) the same as in the full brief, then filtered
        items = await self.storage.matched_items(
            channel.id, start, end, max_age=self.options.max_item_age
        )
        digest = await self.digests.make(
            channel, view, items, start, end, kind="brief",
            title=f"Brief: {chosen.name}" if chosen else "Brief",
            focus=chosen.id if chosen else None,
        )
        return Reply(digest=digest, ephemeral=False)

    async def search(self, ctx: ChannelContext, query: str, hours: int | None = None) -> Reply:
        channel = await self.channels.channel(ctx)
        now = self.clock.now()
        # the same time basis as /brief: when the item was published (else fetched);
        # backlog is searchable, it is just old
        since = now - timedelta(hours=hours) if hours else None
        hits = await self.storage.search(
            query, since=since, limit=SEARCH_LIMIT, channel_id=channel.id
        )
        span = f" in the last {hours} h" if hours else ""
        if not hits:
            return Reply(lines=(f"No stored story matches {query!r}{span}.",), ephemeral=False)
        lines = [f"Search {query!r}{span}: {len(hits)} best"]
        for i, hit in enumerate(hits, 1):
            lines.extend(_item_lines(i, hit.stored, channel.timezone, now))
        return Reply(lines=tuple(lines), ephemeral=False)


def _item_lines(i: int, stored: StoredItem, tz: str, now: datetime) -> list[str]:
    when = format_time(stored.when, tz, now=now)
    lines = [f"{i}. {item_title(stored)} — {stored.item.source} · {when}"]
    link = stored.item.canonical_link or stored.item.link
    if link:
        lines.append(f"    {link}")
    return lines
