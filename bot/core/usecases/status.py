"""``/status`` (the channel's feeds, schedule and deliveries at a glance), ``/help`` and
the suggestions adapters offer while an option is typed."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import available_timezones

from bot.core.clock import Clock
from bot.core.commands import Autocomplete, help_lines
from bot.core.digest import format_time
from bot.core.format import ago
from bot.core.ports import Storage
from bot.core.replies import ChannelContext, Reply
from bot.core.safety import inert
from bot.core.text import truncate
from bot.core.timeparse import zone
from bot.core.usecases.channels import Channels
from bot.core.usecases.digests import ScheduleInfo


class StatusCommands:
    def __init__(
        self,
        *,
        storage: Storage,
        clock: Clock,
        channels: Channels,
        schedule_info: ScheduleInfo | None = None,
    ) -> None:
        self.storage = storage
        self.clock = clock
        self.channels = channels
        self.schedule_info = schedule_info

    async def status(self, ctx: ChannelContext) -> Reply:
        channel = await self.channels.channel(ctx)
        now = self.clock.now()
        feeds = await self.storage.channel_feeds(channel.id)
        failing = [f for f in feeds if f.failing]
        polled = [f for f in feeds if f.last_success_at is not None and not f.failing]
        never = [f for f in feeds if f.last_success_at is None and not f.failing]
        lines = []
        if channel.paused_reason:
            lines.append(
                f"⚠ Posting to this channel is paused: {channel.paused_reason}. "
                "Fix the bot's access, then run /digest schedule to resume."
            )
        lines.append(
            f"Feeds: {len(feeds)} ({len(polled)} ok, {len(failing)} failing, "
            f"{len(never)} not polled yet)"
        )
        for f in failing[:10]:
            since = ago(f.last_error_at, now)
            lines.append(
                f"  ✗ {inert(f.name, markdown=False)}: {f.last_error or 'failing'} "
                f"({f.consecutive_failures}× in a row, last {since})"
            )
        if len(failing) > 10:
            lines.append(f"  …and {len(failing) - 10} more failing (see /feeds list)")
        tz = zone(channel.timezone)
        midnight = datetime.combine(now.astimezone(tz).date(), time(0), tzinfo=tz)
        mine = {f.id for f in feeds}
        today = [
            s
            for s in await self.storage.items_between(midnight, now + timedelta(seconds=1))
            if s.feed_id in mine and s.fetched_at >= midnight
        ]
        lines.append(f"Items stored today from this channel's feeds: {len(today)}")
        next_poll = self.schedule_info.next_poll() if self.schedule_info else None
        if next_poll is None:
            due = [f.next_poll_at for f in feeds if f.next_poll_at is not None]
            next_poll = min(due) if due else None
        if next_poll is not None:
            when = "due now" if next_poll <= now else ago(next_poll, now)
            lines.append(f"Next poll: {format_time(next_poll, channel.timezone, now=now)} ({when})")
        else:
            lines.append("Next poll: not scheduled")
        if channel.digest_time:
            nxt = self.schedule_info.next_digest(channel) if self.schedule_info else None
            days = channel.digest_days or "every day"
            where = f"{channel.digest_time} {channel.timezone}, {days}"
            if nxt is not None:
                lines.append(
                    f"Next digest: {format_time(nxt, channel.timezone, now=now)} ({where})"
                )
            else:
                lines.append(f"Digest: {where} (not running)")
        else:
            lines.append("Digest: not scheduled (/digest schedule time:08:00 sets one)")
        last_sent = await self.storage.last_sent_at(channel.id, "digest")
        if last_sent is not None:  # a digest was posted (not only scheduled)
            lines.append(
                f"Last digest: {format_time(last_sent, channel.timezone, now=now)} "
                f"({ago(last_sent, now)})"
            )
        lines.append(f"Digests grouped by {channel.group_by} (/digest group changes it)")
        pending = await self.storage.pending_deliveries(channel.id)
        if pending:
            err = pending[-1].last_error
            lines.append(
                f"Waiting to post: {len(pending)}" + (f" (last error: {err})" if err else "")
            )
        return Reply(lines=tuple(lines))

    async def help(self, _ctx: ChannelContext, command: str | None = None) -> Reply:
        return Reply(lines=tuple(help_lines(command)))

    async def autocomplete(
        self, ctx: ChannelContext, what: Autocomplete, prefix: str, *, limit: int = 25
    ) -> list[tuple[str, str]]:
        """(label, value) suggestions for an option being typed."""
        needle = prefix.strip().casefold()
        if what is Autocomplete.TIMEZONE:
            zones = sorted(z for z in available_timezones() if needle in z.casefold())
            return [(z, z) for z in zones[:limit]]
        channel = await self.channels.channel(ctx)
        if what is Autocomplete.ENTRY:
            view = await self.channels.watchlist(channel.id)
            return [
                (f"{e.name} ({e.id})", e.id)
                for e in view.watchlist.entries
                if needle in e.id or needle in e.name.casefold()
            ][:limit]
        feeds = await self.storage.channel_feeds(channel.id)
        return [
            (truncate(f"{f.name} — {f.url}", 100), f.url)
            for f in feeds
            if needle in f.name.casefold() or needle in f.url.casefold()
        ][:limit]
