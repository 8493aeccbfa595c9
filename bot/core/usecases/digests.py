"""Digests: the brief and digest builder, the scheduled digest, and ``/digest now``,
``/digest schedule``, ``/digest off``, ``/digest group``.

A command never waits on a poll: ``/brief`` and ``/digest now`` answer from what is
stored. A scheduled digest covers the period since the channel's last digest, confirmed
or still pending (at most :data:`MAX_DIGEST_PERIOD`), and is delivered once per slot
(:func:`~bot.core.schedule.slot_key`).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Protocol

from bot.core.clock import Clock
from bot.core.delivery import Outbox
from bot.core.digest import Digest, build_digest, format_time
from bot.core.options import ServiceOptions
from bot.core.ports import ChannelRecord, MatchedItem, Storage
from bot.core.replies import ChannelContext, Reply
from bot.core.schedule import DigestSchedule, parse_days, slot_key
from bot.core.timeparse import check_time_of_day, zone
from bot.core.usecases.channels import Channels, ChannelWatchlist
from bot.errors import BriefbotError

log = logging.getLogger(__name__)

#: a digest never covers more than this (a channel paused for a month)
MAX_DIGEST_PERIOD = timedelta(days=7)


class ScheduleInfo(Protocol):
    """Next-run times, from the scheduler (for /status and schedule replies)."""

    def next_poll(self) -> datetime | None: ...

    def next_digest(self, channel: ChannelRecord) -> datetime | None: ...


#: called with the channel after its digest schedule changed (sync or async)
ScheduleChanged = Callable[[ChannelRecord], Awaitable[None] | None]


class Digests:
    """Builds briefs and digests from stored matches, and delivers scheduled digests."""

    def __init__(
        self,
        *,
        storage: Storage,
        clock: Clock,
        options: ServiceOptions,
        channels: Channels,
        outbox: Outbox | None = None,
    ) -> None:
        self.storage = storage
        self.clock = clock
        self.options = options
        self.channels = channels
        self.outbox = outbox

    async def make(
        self,
        channel: ChannelRecord,
        view: ChannelWatchlist,
        items: Sequence[MatchedItem],
        start: datetime,
        end: datetime,
        *,
        kind: str,
        title: str | None = None,
        focus: str | None = None,
    ) -> Digest:
        """The digest of ``items`` for the channel, with the feeds that failed in the
        period (``focus``: only the stories of that entry, see ``build_digest``)."""
        feed_ids = await self.channels.feed_ids(channel.id)
        failed = [f for f in await self.storage.failures_between(start, end) if f.id in feed_ids]
        return build_digest(
            items,
            entries=view.entries,
            period_start=start,
            period_end=end,
            tz=channel.timezone,
            failed_feeds=failed,
            group_by=channel.group_by,
            max_stories=self.options.max_stories,
            kind=kind,
            now=self.clock.now(),
            title=title,
            focus=focus,
            language=self.options.language,
        )

    async def period_start(self, channel: ChannelRecord, end: datetime) -> datetime:
        """Where the channel's next digest starts: where the latest digest made for it
        ended, confirmed or still pending (a digest waiting for the platform carries its
        stories: the next one must not repeat them); 24 h before ``end`` for a first
        digest; never more than :data:`MAX_DIGEST_PERIOD` back."""
        ends = [channel.last_digest_at] if channel.last_digest_at is not None else []
        ends.extend(await self._pending_digest_ends(channel.id))
        start = max(ends) if ends else end - timedelta(hours=24)
        return max(min(start, end), end - MAX_DIGEST_PERIOD)

    async def _pending_digest_ends(self, channel_id: int) -> list[datetime]:
        """The period ends of the channel's digests not confirmed yet (the outbox still
        retries them)."""
        ends = []
        for delivery in await self.storage.pending_deliveries(channel_id):
            if delivery.kind != "digest":
                continue
            try:
                ends.append(Digest.from_payload(delivery.payload).period_end)
            except BriefbotError:  # unreadable: the outbox marks it failed at its retry
                continue
        return ends

    async def build_channel_digest(self, channel: ChannelRecord, end: datetime) -> Digest:
        """The channel's digest for the period since its last digest (or the last 24 h)
        up to ``end``."""
        start = await self.period_start(channel, end)
        view = await self.channels.watchlist(channel.id)
        # by publication time, plus what was published before the period but only
        # fetched in it (it was in no earlier digest); backlog is never news
        items = await self.storage.matched_items(
            channel.id, start, end, max_age=self.options.max_item_age, late=True
        )
        return await self.make(channel, view, items, start, end, kind="digest")

    async def send_scheduled_digest(self, channel_id: int, slot: datetime) -> None:
        """The scheduler's digest job: build the slot's digest and deliver it once."""
        if self.outbox is None:
            log.warning("no outbox: scheduled digest for channel %s dropped", channel_id)
            return
        channel = await self.storage.channel_by_id(channel_id)
        if channel.paused_reason:
            log.info("channel %s is paused (%s): no digest", channel_id, channel.paused_reason)
            return
        key = slot_key(slot, channel.timezone)
        if await self.storage.get_delivery(channel.id, key) is not None:
            return
        digest = await self.build_channel_digest(channel, slot)
        await self.outbox.deliver(channel, "digest", key, digest)


class DigestCommands:
    """``/digest now``, ``/digest schedule``, ``/digest off``, ``/digest group``."""

    def __init__(
        self,
        *,
        storage: Storage,
        clock: Clock,
        channels: Channels,
        digests: Digests,
        outbox: Outbox | None = None,
        schedule_info: ScheduleInfo | None = None,
        on_schedule_changed: ScheduleChanged | None = None,
    ) -> None:
        self.storage = storage
        self.clock = clock
        self.channels = channels
        self.digests = digests
        self.outbox = outbox
        self.schedule_info = schedule_info
        self.on_schedule_changed = on_schedule_changed

    async def digest_now(self, ctx: ChannelContext) -> Reply:
        """Post the digest since the last one (which moves the next digest's start).

        A member without Manage Server gets a preview instead: the same digest as a
        reply in the channel, which moves nothing. Nothing new is said as such (nothing
        is posted and the period stays open)."""
        channel = await self.channels.channel(ctx)
        end = self.clock.now()
        digest = await self.digests.build_channel_digest(channel, end)
        if not ctx.can_manage:
            preview = replace(digest, title=f"{digest.title} preview")
            return Reply(
                lines=(
                    "A preview of the next digest (it stays due: posting it needs "
                    "the Manage Server permission).",
                ),
                digest=preview,
                ephemeral=False,
            )
        if digest.is_empty:
            return Reply.message(
                f"Nothing new to post: {digest.empty_text()} The next digest covers "
                "the same period."
            )
        stories = f"{digest.story_count} {'story' if digest.story_count == 1 else 'stories'}"
        if channel.paused_reason:
            return Reply(
                lines=(
                    f"Scheduled posts to this channel are paused ({channel.paused_reason}); "
                    "run /digest schedule to resume them. Here is the digest:",
                ),
                digest=digest,
                ephemeral=False,
            )
        if self.outbox is None or not self.outbox.has_sink(channel.platform):
            # nothing can post to the channel on its own: answer with the digest itself
            return Reply(digest=digest, ephemeral=False)
        key = "digest:now:" + end.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        delivery = await self.outbox.deliver(channel, "digest", key, digest)
        if delivery is None or delivery.status == "sent":
            return Reply.message(f"Digest posted ({stories}, {digest.period_text()}).")
        if delivery.status == "failed":
            return Reply(
                lines=(f"The digest could not be posted: {delivery.last_error}",), error=True
            )
        return Reply.message(
            f"The digest could not be posted yet ({delivery.last_error}); it will be retried."
        )

    async def schedule_digest(
        self,
        ctx: ChannelContext,
        time: str | None = None,
        tz: str | None = None,
        days: str | None = None,
    ) -> Reply:
        hhmm = check_time_of_day(time or self.digests.options.default_time)
        channel = await self.channels.channel(ctx)
        timezone = tz.strip() if tz else channel.timezone
        zone(timezone)  # InputError for an unknown zone
        cron_days = parse_days(days)
        # the schedule the scheduler will build, checked before anything is stored
        DigestSchedule.build(hhmm, timezone, cron_days)
        updated = await self.storage.set_schedule(
            channel.id, time=hhmm, timezone=timezone, days=cron_days
        )
        lines = [
            f"Digest scheduled at {hhmm} ({timezone}), "
            f"{'on ' + cron_days if cron_days else 'every day'}."
        ]
        if channel.last_digest_at is None:
            # The schedule's start: the first digest covers stories from now on, and a
            # first slot missed while the bot is down is caught up like any other.
            await self.storage.set_last_digest_at(channel.id, self.clock.now())
            updated = await self.storage.channel_by_id(channel.id)
            lines.append(
                "The first digest covers stories from now on (/brief shows the latest any time)."
            )
        if channel.paused_reason:
            await self.storage.set_paused(channel.id, None)
            updated = await self.storage.channel_by_id(channel.id)
            lines.append(f"Posting resumed (it was paused: {channel.paused_reason}).")
        await self._schedule_changed(updated)
        nxt = self.schedule_info.next_digest(updated) if self.schedule_info else None
        if nxt is not None:
            lines.append(
                f"Next digest: {format_time(nxt, timezone, now=self.clock.now())} ({timezone})."
            )
        return Reply(lines=tuple(lines))

    async def digest_off(self, ctx: ChannelContext) -> Reply:
        channel = await self.channels.channel(ctx)
        if not channel.digest_time:
            return Reply.message("This channel has no scheduled digest (nothing to turn off).")
        updated = await self.storage.set_schedule(channel.id, time=None, timezone=None, days=None)
        await self._schedule_changed(updated)
        return Reply.message(
            f"Scheduled digest turned off (it was at {channel.digest_time} {channel.timezone}). "
            "/brief still works any time."
        )

    async def digest_group(self, ctx: ChannelContext, by: str) -> Reply:
        channel = await self.channels.channel(ctx)
        updated = await self.storage.set_group_by(channel.id, by)
        how = (
            "by story: one ranked list, each story tagged with the entries it matched"
            if updated.group_by == "story"
            else "by tracked entry: actors, then topics, each story under its strongest entry"
        )
        same = " (unchanged)" if channel.group_by == updated.group_by else ""
        return Reply.message(f"Digests and briefs here are grouped {how}{same}.")

    async def _schedule_changed(self, channel: ChannelRecord) -> None:
        if self.on_schedule_changed is None:
            return
        result = self.on_schedule_changed(channel)
        if inspect.isawaitable(result):
            await result
