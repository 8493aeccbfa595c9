"""``/brief`` (the latest matched stories, now) and ``/search`` (stored stories by
words). Both answer from what is stored and are visible to the channel."""

from __future__ import annotations

from datetime import datetime, timedelta

from bot.core.clock import Clock
from bot.core.commands import MAX_SEARCH_PAGE
from bot.core.digest import format_time
from bot.core.format import item_title
from bot.core.models import StoredItem
from bot.core.options import ServiceOptions
from bot.core.ports import Storage
from bot.core.replies import ChannelContext, Reply
from bot.core.safety import inert
from bot.core.usecases.channels import Channels, resolve_entry
from bot.core.usecases.digests import Digests
from bot.core.usecases.searching import PAGE_SIZE, search_page


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

    async def brief(
        self, ctx: ChannelContext, entry: str | None = None, hours: int | None = None
    ) -> Reply:
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
            channel,
            view,
            items,
            start,
            end,
            kind="brief",
            title=f"Brief: {chosen.name}" if chosen else "Brief",
            focus=chosen.id if chosen else None,
        )
        return Reply(digest=digest, ephemeral=False)

    async def search(
        self, ctx: ChannelContext, query: str, hours: int | None = None, page: int | None = None
    ) -> Reply:
        channel = await self.channels.channel(ctx)
        now = self.clock.now()
        # the same time basis as /brief: when the item was published (else fetched);
        # backlog is searchable, it is just old
        since = now - timedelta(hours=hours) if hours else None
        view = await self.channels.watchlist(channel.id)
        page = page or 1
        found = await search_page(
            self.storage,
            view,
            query,
            channel_id=channel.id,
            since=since,
            fetched_since=None,
            page=page,
        )
        hits = found.hits
        span = f" in the last {hours} h" if hours else ""
        also = ""
        if found.entry is not None:
            shown = ", ".join(found.forms[:4]) + (", …" if len(found.forms) > 4 else "")
            also = f" (and {found.entry.name}'s aliases: {inert(shown, markdown=False)})"
        if not hits:
            if page > 1:
                return Reply(
                    lines=(f"No more stories match {query!r}{span} (page {page}).",),
                    ephemeral=False,
                )
            return Reply(
                lines=(f"No stored story matches {query!r}{also}{span}.",), ephemeral=False
            )
        if page == 1:
            lines = [f"Search {query!r}{also}{span}: {len(hits)} best"]
        else:
            lines = [f"Search {query!r}{also}{span}, page {page}: {len(hits)} more"]
        first = (page - 1) * PAGE_SIZE
        for i, hit in enumerate(hits, first + 1):
            lines.extend(_item_lines(i, hit.stored, channel.timezone, now))
        if found.more and page < MAX_SEARCH_PAGE:
            lines.append(f"More: the same /search with page:{page + 1}")
        return Reply(lines=tuple(lines), ephemeral=False)


def _item_lines(i: int, stored: StoredItem, tz: str, now: datetime) -> list[str]:
    when = format_time(stored.when, tz, now=now)
    lines = [f"{i}. {item_title(stored)} — {stored.item.source} · {when}"]
    link = stored.item.canonical_link or stored.item.link
    if link:
        lines.append(f"    {link}")
    return lines
