"""New items from the poller: matched with every channel's own entries, and posted at
once, one alert per story, where they matched an ``instant`` entry.

The poller stores each new item and matches it with the default watchlist; the
channel-scoped matches (``/track`` entries) and the alerts happen here
(:meth:`Alerts.handle_new_items`, the poller's ``on_new_items`` hook). Everything is
idempotent (matches are kept per item and entry, an alert goes out once per story), so
:meth:`Alerts.recover_interrupted_poll` may hand the same items over again.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta

from bot.core.clock import Clock
from bot.core.delivery import Outbox, alert_key
from bot.core.digest import build_digest
from bot.core.matching import Matcher
from bot.core.ports import ChannelRecord, MatchedItem, Storage
from bot.core.stories import cluster
from bot.core.usecases.channels import Channels
from bot.errors import BriefbotError

log = logging.getLogger(__name__)

#: how far back an instant alert looks for the same story already alerted
ALERT_STORY_WINDOW = timedelta(hours=48)
#: how far back a poll cycle cut short is looked for
RECOVER_WINDOW = timedelta(days=7)


class Alerts:
    def __init__(
        self,
        *,
        storage: Storage,
        clock: Clock,
        channels: Channels,
        outbox: Outbox | None = None,
    ) -> None:
        self.storage = storage
        self.clock = clock
        self.channels = channels
        self.outbox = outbox

    async def recover_interrupted_poll(self, matcher: Matcher) -> int:
        """Finish what a poll cycle cut short at shutdown may have left undone, before
        the first poll of a new run: the items each feed stored in its latest cycle (a
        fetched time at or after the feed's last recorded poll outcome) are matched with
        the default watchlist and handed to :meth:`handle_new_items` again. Everything
        here is idempotent (matches are kept per item and entry, an alert goes out once
        per story), so a cycle that did finish costs only the re-check. Returns how many
        items were re-checked."""
        now = self.clock.now()
        last_outcome: dict[int, datetime | None] = {}
        for f in await self.storage.all_feeds():
            times = [t for t in (f.last_success_at, f.last_error_at) if t is not None]
            last_outcome[f.id] = max(times) if times else None
        recent = await self.storage.items_between(now - RECOVER_WINDOW, now + timedelta(seconds=1))
        todo = []
        for stored in recent:
            if stored.feed_id not in last_outcome:
                continue
            last = last_outcome[stored.feed_id]
            if last is None or stored.fetched_at >= last:
                todo.append(stored)
        fresh: list[MatchedItem] = []
        for stored in sorted(todo, key=lambda s: s.id):
            found = tuple(matcher.match(stored.item.title, stored.item.summary))
            if found:
                await self.storage.add_matches(stored.id, found, scope=None)
            fresh.append(MatchedItem(stored, found))
        if fresh:
            log.info("re-checked %d items of the last poll cycle", len(fresh))
            await self.handle_new_items(fresh)
        return len(fresh)

    async def handle_new_items(self, fresh: Sequence[MatchedItem]) -> None:
        """After a poll (the poller's ``on_new_items`` hook): match the new items with
        every channel's own entries (stored with the channel's scope), then post an
        instant alert, once per story, in each channel where a new item matched one of
        its ``instant`` entries."""
        if not fresh:
            return
        for channel in await self.storage.all_channels():
            try:
                await self._new_items_for(channel, fresh)
            except BriefbotError as err:
                log.warning("new items for channel %s: %s", channel.id, err)

    async def _new_items_for(self, channel: ChannelRecord, fresh: Sequence[MatchedItem]) -> int:
        view = await self.channels.watchlist(channel.id)
        if view.own_matcher is None:
            return 0
        feed_ids = await self.channels.feed_ids(channel.id)
        mine = [mi for mi in fresh if mi.stored.feed_id in feed_ids]
        for mi in mine:
            found = view.own_matcher.match(mi.stored.item.title, mi.stored.item.summary)
            if found:
                await self.storage.add_matches(mi.stored.id, found, scope=channel.id)
        instant = view.instant_ids
        if not instant or not mine or self.outbox is None or channel.paused_reason:
            return 0
        now = self.clock.now()
        fresh_ids = {mi.stored.id for mi in mine}
        recent = await self.storage.matched_items(
            channel.id,
            now - ALERT_STORY_WINDOW,
            now + timedelta(minutes=1),
            max_age=self.channels.options.max_item_age,
        )
        recent = [mi for mi in recent if any(m.entry_id in instant for m in mi.matches)]
        if not any(mi.stored.id in fresh_ids for mi in recent):
            return 0
        alerted = await self.storage.alerted(channel.id, [mi.stored.id for mi in recent])
        kinds = {e.id: e.kind for e in view.watchlist.entries}
        entries = view.entries
        sent = 0
        for story in cluster(recent, entry_kinds=kinds):
            ids = {mi.stored.id for mi in story.items}
            if not ids & fresh_ids or ids & alerted:
                continue  # nothing new in it, or this story was already alerted
            names = [entries[e].name for e in story.entry_ids if e in instant]
            digest = build_digest(
                list(story.items),
                entries=entries,
                period_start=story.first,
                period_end=now,
                tz=channel.timezone,
                kind="alert",
                now=now,
                title="Alert: " + ", ".join(names),
                group_by=channel.group_by,
            )
            delivery = await self.outbox.deliver(
                channel, "alert", alert_key(story.id), digest, item_ids=sorted(ids)
            )
            if delivery is not None and delivery.status == "sent":
                sent += 1
        return sent
