"""The use cases every chat adapter calls: one :class:`BriefingService`.

Adapters turn a platform event into a :class:`~bot.core.replies.ChannelContext` (who,
where, may they manage) plus a command name and arguments, and call
:meth:`BriefingService.dispatch`, which validates the arguments against the command spec
(:mod:`bot.core.commands`), checks the manage permission, runs the use case and returns
a platform-neutral :class:`~bot.core.replies.Reply`. Every expected failure comes back
as an error Reply (ephemeral) with a message fit for the user; state is unchanged
(everything is validated before anything is written).

A command never waits on a poll: ``/brief`` and ``/digest now`` answer from what is
stored. The one command that touches the network is ``/feeds add`` (and ``import``):
an untrusted URL is checked by the SSRF guard and fetched once before it is accepted.

A channel's effective watchlist is the default watchlist minus the entries it disabled,
with its own entries (``/track``) added or replacing defaults of the same id; it is
compiled once and cached per channel until the channel's entries change.
"""

from __future__ import annotations

import asyncio
import difflib
import functools
import inspect
import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any, Protocol
from zoneinfo import available_timezones

from yarl import URL

from bot.config import Settings
from bot.core.clock import Clock
from bot.core.commands import Autocomplete, get_command, help_lines, validate_args
from bot.core.delivery import Outbox, alert_key
from bot.core.digest import Digest, build_digest, format_day_time, zone
from bot.core.matching import Matcher, compile_watchlist
from bot.core.models import EntryKind, FeedHealth, FeedSource, FetchResult, Match, StoredItem
from bot.core.opml import export_opml, parse_opml
from bot.core.ports import ChannelEntryRecord, ChannelRecord, MatchedItem, Storage
from bot.core.replies import Attachment, ChannelContext, Reply
from bot.core.stories import cluster
from bot.core.text import plain, truncate
from bot.core.watchlist import Alias, Entry, Watchlist, make_user_entry, slugify
from bot.errors import (
    BriefbotError,
    FeedError,
    InputError,
    NotFoundError,
    PermissionDenied,
    UnsafeURLError,
)
from bot.scheduling import DigestSchedule, parse_days, slot_key

log = logging.getLogger(__name__)

#: how far back /track re-matches stored items with a new entry
REMATCH_WINDOW = timedelta(days=7)
#: a digest never covers more than this (a channel paused for a month)
MAX_DIGEST_PERIOD = timedelta(days=7)
#: how far back an instant alert looks for the same story already alerted
ALERT_STORY_WINDOW = timedelta(hours=48)
MAX_IMPORT = 100
IMPORT_CONCURRENCY = 4
SEARCH_LIMIT = 10
MAX_TEST_LINES = 12
_TIME = re.compile(r"^([01]?\d|2[0-3])(?::|h|\.)?([0-5]\d)$")

MANAGE_DENIED = (
    "Changing this channel's setup needs the Manage Server permission. "
    "Ask someone who has it, or use /brief, /watchlist and /status to look."
)


class FetcherLike(Protocol):
    async def fetch(
        self,
        url: str,
        *,
        etag: str | None = None,
        last_modified: str | None = None,
        url_guard: Callable[[str], Awaitable[None]] | None = None,
    ) -> FetchResult: ...


class ScheduleInfo(Protocol):
    """Next-run times, from the scheduler (for /status and schedule replies)."""

    def next_poll(self) -> datetime | None: ...

    def next_digest(self, channel: ChannelRecord) -> datetime | None: ...


#: called with the channel after its digest schedule changed (sync or async)
ScheduleChanged = Callable[[ChannelRecord], Awaitable[None] | None]
#: ``bot.feeds.parse.parse_feed_bytes`` (run in an executor)
ParseFn = Callable[..., Any]


@dataclass(frozen=True, slots=True)
class ChannelWatchlist:
    """A channel's effective watchlist, compiled."""

    watchlist: Watchlist
    matcher: Matcher
    own: dict[str, ChannelEntryRecord]
    own_entries: dict[str, Entry]
    disabled: frozenset[str]
    own_matcher: Matcher | None = None
    defaults: frozenset[str] = field(default_factory=frozenset)

    @property
    def entries(self) -> dict[str, Entry]:
        return {e.id: e for e in self.watchlist.entries}

    @property
    def instant_ids(self) -> set[str]:
        return {eid for eid, rec in self.own.items() if rec.mode == "instant"}


def _ago(when: datetime | None, now: datetime) -> str:
    if when is None:
        return "never"
    seconds = (now - when).total_seconds()
    future = seconds < 0
    seconds = abs(seconds)
    if seconds < 90:
        text = f"{max(1, round(seconds))} s" if seconds >= 1 else "now"
    elif seconds < 90 * 60:
        text = f"{round(seconds / 60)} min"
    elif seconds < 36 * 3600:
        text = f"{round(seconds / 3600)} h"
    else:
        text = f"{round(seconds / 86400)} days"
    if text == "now":
        return text
    return f"in {text}" if future else f"{text} ago"


def parse_time_of_day(value: str) -> str:
    """ "8:30", "08:30", "0830", "8h30" -> "08:30"; InputError otherwise."""
    m = _TIME.match(value.strip().lower())
    if not m:
        raise InputError(f"{value!r} is not a time of day: use HH:MM (24-hour), e.g. 08:30.")
    return f"{int(m.group(1)):02d}:{m.group(2)}"


class BriefingService:
    def __init__(
        self,
        *,
        storage: Storage,
        clock: Clock,
        settings: Settings,
        watchlist: Watchlist,
        fetcher: FetcherLike,
        parse: ParseFn,
        schedule_info: ScheduleInfo | None = None,
        on_schedule_changed: ScheduleChanged | None = None,
        outbox: Outbox | None = None,
        url_guard: Callable[[str], Awaitable[None]],
        poll_feeds: Callable[[list[int]], Awaitable[object]] | None = None,
    ) -> None:
        self.storage = storage
        self.clock = clock
        self.settings = settings
        self.watchlist = watchlist
        self.fetcher = fetcher
        self.parse = parse
        self.schedule_info = schedule_info
        self.on_schedule_changed = on_schedule_changed
        self.outbox = outbox
        #: the SSRF guard for feeds added from chat (bot.feeds.guard, wired by bot.app)
        self.url_guard = url_guard
        #: polls the given feeds now (the poller); a feed added from chat is stored and
        #: matched at once, so /brief shows its stories without waiting for the next tick
        self.poll_feeds = poll_feeds
        self._views: dict[int, ChannelWatchlist] = {}
        #: channels known to exist, per platform loaded once (a new one gets defaults)
        self._known_channels: set[tuple[str, str]] = set()
        self._loaded_platforms: set[str] = set()
        self._handlers: dict[str, Callable[..., Awaitable[Reply]]] = {
            "brief": self.brief,
            "digest now": self.digest_now,
            "digest schedule": self.schedule_digest,
            "digest off": self.digest_off,
            "digest group": self.digest_group,
            "track": self.track,
            "untrack": self.untrack,
            "watchlist": self.show_watchlist,
            "feeds add": self.feeds_add,
            "feeds remove": self.feeds_remove,
            "feeds list": self.feeds_list,
            "feeds import": self.feeds_import,
            "feeds export": self.feeds_export,
            "search": self.search,
            "test": self.test,
            "status": self.status,
            "help": self.help,
        }

    # -- entry point -------------------------------------------------------------------
    async def dispatch(self, ctx: ChannelContext, command: str, args: dict[str, Any]) -> Reply:
        """Run ``command`` ("brief", "feeds add") with ``args`` (option name -> value, as
        typed by the platform or parsed from text). Expected failures become an error
        Reply; anything else is a bug and propagates (the adapter logs it)."""
        try:
            spec = get_command(command)
            typed = validate_args(spec, args)
            if spec.manage and not ctx.can_manage:
                raise PermissionDenied(MANAGE_DENIED)
            return await self._handlers[spec.name](ctx, **typed)
        except BriefbotError as err:
            log.info("/%s from %s in %s:%s: %s", command, ctx.user, ctx.platform,
                     ctx.channel_id, err)
            return Reply.failure(err)

    # -- channels and their watchlists -------------------------------------------------
    async def channel(self, ctx: ChannelContext) -> ChannelRecord:
        """The channel's record, created on first use with the configured defaults
        (time zone, and ``digest.group_by``)."""
        key = (ctx.platform, ctx.channel_id)
        if ctx.platform not in self._loaded_platforms:
            self._known_channels.update(
                (c.platform, c.external_id) for c in await self.storage.all_channels(ctx.platform)
            )
            self._loaded_platforms.add(ctx.platform)
        record = await self.storage.get_channel(
            ctx.platform,
            ctx.channel_id,
            guild_id=ctx.guild_id,
            name=ctx.channel_name,
            default_tz=self.settings.digest.default_timezone,
        )
        if key not in self._known_channels:  # created just now
            self._known_channels.add(key)
            wanted = self.settings.digest.group_by
            if record.group_by != wanted:
                record = await self.storage.set_group_by(record.id, wanted)
        return record

    def invalidate(self, channel_id: int) -> None:
        self._views.pop(channel_id, None)

    async def channel_watchlist(self, channel_id: int) -> ChannelWatchlist:
        cached = self._views.get(channel_id)
        if cached is not None:
            return cached
        own_records = await self.storage.channel_entries(channel_id)
        disabled = frozenset(await self.storage.disabled_entries(channel_id))
        own: dict[str, ChannelEntryRecord] = {}
        own_entries: dict[str, Entry] = {}
        for rec in own_records:
            try:
                own_entries[rec.entry_id] = Entry.from_definition(rec.definition)
            except InputError as err:  # stored by an older version: skip, say why in logs
                log.warning("channel %s: own entry %s unusable: %s", channel_id, rec.entry_id,
                            err)
                continue
            own[rec.entry_id] = rec
        defaults = frozenset(self.watchlist.ids)
        entries = [
            own_entries.get(e.id, e) for e in self.watchlist.entries
            if e.id not in disabled or e.id in own_entries
        ]
        entries.extend(e for eid, e in own_entries.items() if eid not in defaults)
        wl = Watchlist(entries=tuple(entries), source=f"channel {channel_id}")
        own_wl = Watchlist(entries=tuple(own_entries.values())) if own_entries else None
        view = ChannelWatchlist(
            watchlist=wl,
            matcher=compile_watchlist(wl),
            own=own,
            own_entries=own_entries,
            disabled=disabled,
            own_matcher=compile_watchlist(own_wl) if own_wl is not None else None,
            defaults=defaults,
        )
        self._views[channel_id] = view
        return view

    def _resolve_entry(
        self, view: ChannelWatchlist, text: str, *, extra: Sequence[Entry] = ()
    ) -> Entry:
        """An entry of the channel by id, slug or name (case-insensitive)."""
        query = text.strip()
        candidates = [*view.watchlist.entries, *extra]
        by_id = {e.id: e for e in candidates}
        if query in by_id:
            return by_id[query]
        slug = slugify(query)
        if slug in by_id:
            return by_id[slug]
        folded = query.casefold()
        for e in candidates:
            if e.name.casefold() == folded:
                return e
        names = [e.id for e in candidates] + [e.name for e in candidates]
        close = difflib.get_close_matches(query, names, n=3, cutoff=0.6)
        hint = f" Did you mean {', '.join(close)}?" if close else " See /watchlist."
        raise NotFoundError(f"No watchlist entry {query!r} in this channel.{hint}")

    async def _channel_feed_ids(self, channel_id: int) -> set[int]:
        return {f.id for f in await self.storage.channel_feeds(channel_id)}

    # -- /brief and digests ------------------------------------------------------------
    async def brief(self, ctx: ChannelContext, entry: str | None = None,
                    hours: int | None = None) -> Reply:
        channel = await self.channel(ctx)
        view = await self.channel_watchlist(channel.id)
        chosen = self._resolve_entry(view, entry) if entry else None
        hours = hours or self.settings.digest.brief_hours
        end = self.clock.now()
        start = end - timedelta(hours=hours)
        items = await self.storage.matched_items(
            channel.id, start, end, entry_id=chosen.id if chosen else None
        )
        digest = await self._digest(
            channel, view, items, start, end, kind="brief",
            title=f"Brief: {chosen.name}" if chosen else "Brief",
        )
        return Reply(digest=digest, ephemeral=False)

    async def _digest(
        self,
        channel: ChannelRecord,
        view: ChannelWatchlist,
        items: Sequence[MatchedItem],
        start: datetime,
        end: datetime,
        *,
        kind: str,
        title: str | None = None,
    ) -> Digest:
        feed_ids = await self._channel_feed_ids(channel.id)
        failed = [f for f in await self.storage.failures_between(start, end) if f.id in feed_ids]
        return build_digest(
            items,
            entries=view.entries,
            period_start=start,
            period_end=end,
            tz=channel.timezone,
            failed_feeds=failed,
            group_by=channel.group_by,
            max_stories=self.settings.digest.max_stories,
            kind=kind,
            now=self.clock.now(),
            title=title,
        )

    async def build_channel_digest(self, channel: ChannelRecord, end: datetime) -> Digest:
        """The channel's digest for the period since its last digest (or the last 24 h)
        up to ``end``."""
        start = channel.last_digest_at or end - timedelta(hours=24)
        start = max(min(start, end), end - MAX_DIGEST_PERIOD)
        view = await self.channel_watchlist(channel.id)
        items = await self.storage.matched_items(channel.id, start, end)
        return await self._digest(channel, view, items, start, end, kind="digest")

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

    async def digest_now(self, ctx: ChannelContext) -> Reply:
        channel = await self.channel(ctx)
        end = self.clock.now()
        digest = await self.build_channel_digest(channel, end)
        stories = f"{digest.story_count} {'story' if digest.story_count == 1 else 'stories'}"
        if channel.paused_reason:
            return Reply(
                lines=(f"Scheduled posts to this channel are paused ({channel.paused_reason}); "
                       "run /digest schedule to resume them. Here is the digest:",),
                digest=digest, ephemeral=False,
            )
        if self.outbox is None or not self.outbox.has_sink(channel.platform):
            # nothing can post to the channel on its own: answer with the digest itself
            return Reply(digest=digest, ephemeral=False)
        key = "digest:now:" + end.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        delivery = await self.outbox.deliver(channel, "digest", key, digest)
        if delivery is None or delivery.status == "sent":
            return Reply.message(f"Digest posted ({stories}, {digest.period_text()}).")
        if delivery.status == "failed":
            return Reply(lines=(f"The digest could not be posted: {delivery.last_error}",),
                         error=True)
        return Reply.message(
            f"The digest could not be posted yet ({delivery.last_error}); it will be retried."
        )

    async def schedule_digest(
        self, ctx: ChannelContext, time: str, tz: str | None = None, days: str | None = None
    ) -> Reply:
        hhmm = parse_time_of_day(time)
        channel = await self.channel(ctx)
        timezone = tz.strip() if tz else channel.timezone
        zone(timezone)  # InputError for an unknown zone
        cron_days = parse_days(days)
        # the schedule the scheduler will build, checked before anything is stored
        DigestSchedule.build(hhmm, timezone, cron_days)
        updated = await self.storage.set_schedule(
            channel.id, time=hhmm, timezone=timezone, days=cron_days
        )
        lines = [f"Digest scheduled at {hhmm} ({timezone}), "
                 f"{'on ' + cron_days if cron_days else 'every day'}."]
        if channel.last_digest_at is None:
            # The schedule's start: the first digest covers stories from now on, and a
            # first slot missed while the bot is down is caught up like any other.
            await self.storage.set_last_digest_at(channel.id, self.clock.now())
            updated = await self.storage.channel_by_id(channel.id)
            lines.append("The first digest covers stories from now on "
                         "(/brief shows the latest any time).")
        if channel.paused_reason:
            await self.storage.set_paused(channel.id, None)
            updated = await self.storage.channel_by_id(channel.id)
            lines.append(f"Posting resumed (it was paused: {channel.paused_reason}).")
        await self._schedule_changed(updated)
        nxt = self.schedule_info.next_digest(updated) if self.schedule_info else None
        if nxt is not None:
            lines.append(f"Next digest: {format_day_time(nxt, timezone)} ({timezone}).")
        return Reply(lines=tuple(lines))

    async def digest_off(self, ctx: ChannelContext) -> Reply:
        channel = await self.channel(ctx)
        if not channel.digest_time:
            return Reply.message("This channel has no scheduled digest (nothing to turn off).")
        updated = await self.storage.set_schedule(channel.id, time=None, timezone=None, days=None)
        await self._schedule_changed(updated)
        return Reply.message(
            f"Scheduled digest turned off (it was at {channel.digest_time} {channel.timezone}). "
            "/brief still works any time."
        )

    async def digest_group(self, ctx: ChannelContext, by: str) -> Reply:
        channel = await self.channel(ctx)
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

    # -- watchlist ---------------------------------------------------------------------
    async def track(
        self,
        ctx: ChannelContext,
        kind: str,
        name: str,
        aliases: str | None = None,
        mode: str | None = None,
    ) -> Reply:
        channel = await self.channel(ctx)
        view = await self.channel_watchlist(channel.id)
        mode = mode or "digest"
        slug = slugify(name)
        default = self.watchlist.get(slug) if slug else None
        if default is not None and slug not in view.own:
            entry, note = self._adapt_default(default, kind, aliases, mode, view)
            if entry is None:  # re-enable a disabled default as it is
                await self.storage.enable_default_entry(channel.id, default.id)
                self.invalidate(channel.id)
                now = self.clock.now()
                recent = await self.storage.matched_items(
                    channel.id, now - REMATCH_WINDOW, now + timedelta(seconds=1),
                    entry_id=default.id,
                )
                return Reply.message(
                    f"Tracking {default.name} ({default.id}) again: the default entry. "
                    + _found_line(len(recent), default.id)
                )
        else:
            others = [e.id for e in view.watchlist.entries]
            entry = make_user_entry(kind, name, aliases or "", existing_ids=others)
            note = ""
        await self.storage.put_channel_entry(channel.id, entry.id, entry.to_definition(), mode)
        if default is not None and default.id in view.disabled:
            await self.storage.enable_default_entry(channel.id, default.id)
        self.invalidate(channel.id)
        found = await self._rematch(channel, entry)
        shown = ", ".join(a.text for a in entry.aliases[:8])
        more = f" (+{len(entry.aliases) - 8} more)" if len(entry.aliases) > 8 else ""
        when = "posted at once and in the digest" if mode == "instant" else "in the digest"
        lines = [
            f"Tracking {entry.name} ({entry.kind.value}, id {entry.id}): {when}.",
            f"Matches: {shown}{more}.",
        ]
        if note:
            lines.append(note)
        lines.append(found)
        return Reply(lines=tuple(lines))

    def _adapt_default(
        self, default: Entry, kind: str, aliases: str | None, mode: str, view: ChannelWatchlist
    ) -> tuple[Entry | None, str]:
        """/track naming a default entry: re-enable it, or a channel copy of it with more
        aliases and/or instant mode. (None, "") means: simply re-enable it."""
        if default.kind.value != kind:
            raise InputError(
                f"{default.name} ({default.id}) is a default {default.kind.value} entry; "
                f"track it with kind:{default.kind.value} or choose another name."
            )
        extra: list[Alias] = []
        if aliases:
            probe = make_user_entry(kind, default.name, aliases, existing_ids=())
            have = {a.text.casefold() for a in default.aliases}
            extra = [a for a in probe.aliases if a.text.casefold() not in have]
        if not extra and mode == "digest":
            if default.id in view.disabled:
                return None, ""
            raise InputError(
                f"{default.name} ({default.id}) is already tracked here (a default entry). "
                "Add aliases:... or mode:instant to change it, or see /watchlist."
            )
        definition = default.to_definition()
        definition["aliases"] = [*definition.get("aliases", []), *(a.compact() for a in extra)]
        entry = Entry.from_definition(definition)
        return entry, f"(A channel copy of the default entry {default.id}; /untrack restores it.)"

    async def _rematch(self, channel: ChannelRecord, entry: Entry) -> str:
        """Match the channel's recent stored items with ``entry`` (so /brief shows them
        at once); returns a line saying how many matched."""
        now = self.clock.now()
        matcher = compile_watchlist(Watchlist(entries=(entry,)))
        feed_ids = await self._channel_feed_ids(channel.id)
        count = 0
        for stored in await self.storage.items_between(now - REMATCH_WINDOW, now + timedelta(
                seconds=1)):
            if stored.feed_id not in feed_ids:
                continue
            found = matcher.match(stored.item.title, stored.item.summary)
            if found:
                await self.storage.add_matches(stored.id, found, scope=channel.id)
                count += 1
        return _found_line(count, entry.id)

    async def untrack(self, ctx: ChannelContext, entry: str) -> Reply:
        channel = await self.channel(ctx)
        view = await self.channel_watchlist(channel.id)
        found = self._resolve_entry(view, entry)
        await self.storage.remove_channel_entry(channel.id, found.id)
        self.invalidate(channel.id)
        if found.id in view.own and found.id in view.defaults:
            if found.id in view.disabled:
                return Reply.message(f"Stopped tracking {found.name} ({found.id}).")
            return Reply.message(
                f"Removed this channel's version of {found.name} ({found.id}); the default "
                f"entry is tracked again. /untrack {found.id} once more to stop it too."
            )
        if found.id in view.own:
            return Reply.message(f"Stopped tracking {found.name} ({found.id}).")
        return Reply.message(
            f"Stopped tracking the default entry {found.name} ({found.id}) in this channel "
            f"(/track kind:{found.kind.value} name:\"{found.name}\" brings it back)."
        )

    async def show_watchlist(self, ctx: ChannelContext) -> Reply:
        channel = await self.channel(ctx)
        view = await self.channel_watchlist(channel.id)
        lines: list[str] = []
        for kind, title in ((EntryKind.ACTOR, "Actors"), (EntryKind.TOPIC, "Topics")):
            group = [e for e in view.watchlist.entries if e.kind is kind]
            if not group:
                continue
            lines.append(f"{title} ({len(group)}):")
            for e in group:
                lines.extend(self._entry_lines(e, view))
        if not lines:
            lines.append("This channel tracks nothing. Add an entry with /track.")
        if view.disabled:
            off = sorted(d for d in view.disabled if d not in view.own)
            if off:
                lines.append(f"Default entries turned off here: {', '.join(off)}.")
        return Reply(lines=tuple(lines))

    def _entry_lines(self, e: Entry, view: ChannelWatchlist) -> list[str]:
        tags = []
        if e.id in view.own:
            tags.append("this channel's" if e.id not in view.defaults else "channel copy")
            if view.own[e.id].mode == "instant":
                tags.append("instant")
        else:
            tags.append("default")
        texts = [a.text for a in e.aliases]
        shown = ", ".join(texts[:8]) + (f" (+{len(texts) - 8} more)" if len(texts) > 8 else "")
        out = [f"• {e.name} ({e.id}) [{', '.join(tags)}]"]
        if shown:
            out.append(f"    aliases: {shown}")
        rules = _describe_rules(e)
        if rules:
            out.append(f"    rules: {rules}")
        return out

    # -- feeds -------------------------------------------------------------------------
    async def _check_feed(self, url: str, name: str | None) -> tuple[FeedSource, int]:
        """Guard and fetch ``url`` once; the FeedSource to store and its item count, or
        InputError saying why it is not a feed we can add."""
        try:
            await self.url_guard(url)
        except (FeedError, UnsafeURLError) as err:  # refused, or DNS failure and the like
            raise InputError(f"Not added: {err}") from None
        result = await self.fetcher.fetch(url, url_guard=self.url_guard)
        if result.error is not None:
            raise InputError(f"Not added: {url} could not be fetched: {result.error}")
        if result.body is None:
            raise InputError(f"Not added: {url} sent no content (HTTP {result.status}).")
        loop = asyncio.get_running_loop()
        call = functools.partial(
            self.parse, result.body, url=url, headers=result.headers,
            base_url=result.final_url, source=name or "",
        )
        try:
            parsed = await loop.run_in_executor(None, call)
        except FeedError as err:
            raise InputError(f"Not added: {url} is {_not_a_feed(str(err))}") from None
        feed_url = result.final_url if result.permanent_redirect else url
        title = name or getattr(parsed, "title", None) or URL(feed_url).host or feed_url
        return FeedSource(url=feed_url, name=truncate(plain(title), 100)), len(parsed.items)

    async def feeds_add(self, ctx: ChannelContext, url: str, name: str | None = None) -> Reply:
        url = _with_scheme(url.strip())
        _refuse_credentials(url)
        channel = await self.channel(ctx)
        existing = await self.storage.channel_feeds(channel.id)
        if any(f.url == url for f in existing):
            raise InputError(f"This channel already follows {url}.")
        minutes = self.settings.poll.interval_minutes
        known = await self._known_feed(url)
        if known is not None:  # polled already (config, or another channel's): no fetch
            await self.storage.add_feed(FeedSource(known.url, known.name), channel_id=channel.id)
            return Reply.message(
                f"Added {known.name} ({_health_text(known, self.clock.now())})."
            )
        source, count = await self._check_feed(url, name)
        state = await self.storage.add_feed(source, channel_id=channel.id)
        if self.poll_feeds is not None:
            try:
                await self.poll_feeds([state.id])
            except Exception:  # the feed is added; the scheduler's next tick polls it
                log.exception("first poll of %s failed", source.url)
        moved = f" (it moved to {source.url})" if source.url != url else ""
        return Reply.message(
            f"Added {source.name}{moved}: {count} {'item' if count == 1 else 'items'} in "
            f"the feed now. New stories are checked every {minutes:g} min."
        )

    async def _known_feed(self, url: str) -> FeedHealth | None:
        return await self.storage.feed_by_url(url)

    async def _resolve_feed(self, channel_id: int, text: str) -> FeedHealth:
        feeds = await self.storage.channel_feeds(channel_id)
        query = text.strip()
        if query.isdigit() and 1 <= int(query) <= len(feeds):
            return feeds[int(query) - 1]
        for f in feeds:
            if f.url == query or f.url == _with_scheme(query):
                return f
        folded = query.casefold()
        named = [f for f in feeds if f.name.casefold() == folded]
        if len(named) == 1:
            return named[0]
        partial = [f for f in feeds if folded in f.name.casefold()]
        if len(partial) == 1:
            return partial[0]
        if len(named) > 1 or len(partial) > 1:
            raise InputError(
                f"{query!r} names several feeds: give its number from /feeds list or its URL."
            )
        raise NotFoundError(f"This channel has no feed {query!r}: see /feeds list.")

    async def feeds_remove(self, ctx: ChannelContext, feed: str) -> Reply:
        channel = await self.channel(ctx)
        found = await self._resolve_feed(channel.id, feed)
        await self.storage.remove_feed(channel.id, found.id)
        return Reply.message(f"Removed {found.name} ({found.url}) from this channel.")

    async def feeds_list(self, ctx: ChannelContext) -> Reply:
        channel = await self.channel(ctx)
        feeds = await self.storage.channel_feeds(channel.id)
        if not feeds:
            return Reply.message("This channel follows no feeds. Add one with /feeds add.")
        now = self.clock.now()
        failing = sum(1 for f in feeds if f.failing)
        lines = [f"{len(feeds)} feeds ({failing} failing):"]
        for i, f in enumerate(feeds, 1):
            lines.append(f"{i}. {f.name} — {f.url}")
            lines.append("    " + _health_text(f, now))
        return Reply(lines=tuple(lines))

    async def feeds_import(self, ctx: ChannelContext, file: bytes) -> Reply:

        sources = parse_opml(file)
        channel = await self.channel(ctx)
        have = {f.url for f in await self.storage.channel_feeds(channel.id)}
        new = [s for s in sources if s.url not in have]
        if len(new) > MAX_IMPORT:
            raise InputError(
                f"The file lists {len(new)} new feeds; import at most {MAX_IMPORT} at a time."
            )
        sem = asyncio.Semaphore(IMPORT_CONCURRENCY)

        known = {f.url: f for f in await self.storage.all_feeds()}

        async def check(src: FeedSource) -> tuple[FeedSource, FeedSource | None, str]:
            try:
                _refuse_credentials(src.url)
            except InputError as err:
                return src, None, str(err).removeprefix("Not added: ")
            if src.url in known:  # polled already: no need to fetch it to trust it
                return src, FeedSource(src.url, known[src.url].name, src.lang), ""
            async with sem:
                try:
                    ok, _ = await self._check_feed(_with_scheme(src.url), src.name)
                except InputError as err:
                    return src, None, str(err).removeprefix("Not added: ")
                return src, FeedSource(ok.url, ok.name, src.lang), ""

        results = await asyncio.gather(*(check(s) for s in new))
        added: list[FeedSource] = []
        refused: list[str] = []
        for src, ok, why in results:
            if ok is None:
                refused.append(f"  ✗ {src.name}: {why}")
                continue
            try:
                await self.storage.add_feed(ok, channel_id=channel.id)
            except InputError as err:  # the same feed twice under two URLs
                refused.append(f"  ✗ {src.name}: {err}")
                continue
            added.append(ok)
        lines = [
            f"Imported {len(added)} of {len(sources)} feeds"
            + (f" ({len(sources) - len(new)} already followed)" if len(sources) > len(new) else "")
            + "."
        ]
        if refused:
            lines.append(f"Not added ({len(refused)}):")
            lines.extend(refused)
        return Reply(lines=tuple(lines))

    async def feeds_export(self, ctx: ChannelContext) -> Reply:

        channel = await self.channel(ctx)
        feeds = await self.storage.channel_feeds(channel.id)
        title = f"Briefbot feeds: {ctx.channel_name or channel.external_id}"
        data = export_opml(
            (FeedSource(f.url, f.name) for f in feeds), title=title, created=self.clock.now()
        )
        return Reply(
            lines=(f"{len(feeds)} feeds as OPML (import them in a feed reader, or with "
                   "/feeds import elsewhere).",),
            attachment=Attachment("briefbot-feeds.opml", data, "text/x-opml"),
        )

    # -- search and test ---------------------------------------------------------------
    async def search(self, ctx: ChannelContext, query: str, hours: int | None = None) -> Reply:
        channel = await self.channel(ctx)
        now = self.clock.now()
        # the same time basis as /brief: when the item was fetched (stored)
        since = now - timedelta(hours=hours) if hours else None
        hits = await self.storage.search(
            query, since=None, fetched_since=since, limit=SEARCH_LIMIT, channel_id=channel.id
        )
        span = f" in the last {hours} h" if hours else ""
        if not hits:
            return Reply(lines=(f"No stored story matches {query!r}{span}.",), ephemeral=False)
        lines = [f"Search {query!r}{span}: {len(hits)} best"]
        for i, hit in enumerate(hits, 1):
            lines.extend(_item_lines(i, hit.stored, channel.timezone, now))
        return Reply(lines=tuple(lines), ephemeral=False)

    async def test(
        self,
        ctx: ChannelContext,
        text: str | None = None,
        entry: str | None = None,
        hours: int | None = None,
    ) -> Reply:
        if (text is None) == (entry is None):
            raise InputError(
                "Give text:... to see which entries a text matches, or entry:... to see "
                "what an entry matched recently (not both)."
            )
        channel = await self.channel(ctx)
        view = await self.channel_watchlist(channel.id)
        if text is not None:
            return Reply(lines=tuple(self._explain_text(view, text)))
        assert entry is not None
        return Reply(lines=tuple(await self._preview_entry(channel, view, entry, hours)))

    def _explain_text(self, view: ChannelWatchlist, text: str) -> list[str]:
        result = view.matcher.explain(text, "")
        entries = view.entries
        lines = []
        matched = {m.entry_id for m in result.matches}
        for m in result.matches:
            name = entries[m.entry_id].name if m.entry_id in entries else m.entry_id
            lines.append(f"✓ {name} ({m.entry_id}): matched {m.alias!r}")
        seen = set()
        for c in result.rejected:
            if c.entry_id in matched or (c.entry_id, c.alias, c.reason) in seen:
                continue
            seen.add((c.entry_id, c.alias, c.reason))
            name = entries[c.entry_id].name if c.entry_id in entries else c.entry_id
            lines.append(f"✗ {name} ({c.entry_id}): {truncate(c.alias, 60)!r} found but not "
                         f"counted: {truncate(c.reason, 160)}")
        if not lines:
            lines.append("No entry of this channel's watchlist matches this text.")
        return lines[:MAX_TEST_LINES * 2]

    async def _preview_entry(
        self, channel: ChannelRecord, view: ChannelWatchlist, text: str, hours: int | None
    ) -> list[str]:
        found = self._resolve_entry(view, text)
        hours = hours or self.settings.digest.brief_hours
        now = self.clock.now()
        feed_ids = await self._channel_feed_ids(channel.id)
        items = [s for s in await self.storage.items_between(
            now - timedelta(hours=hours), now + timedelta(seconds=1)) if s.feed_id in feed_ids]
        matcher = compile_watchlist(Watchlist(entries=(found,)))
        matched: list[tuple[StoredItem, Match]] = []
        rejected: list[tuple[StoredItem, str, str]] = []
        for stored in items:
            result = matcher.explain(stored.item.title, stored.item.summary)
            if result.matches:
                matched.append((stored, result.matches[0]))
            elif result.rejected:
                c = result.rejected[0]
                rejected.append((stored, c.alias, c.reason))
        lines = [f"{found.name} ({found.id}) in the last {hours} h: {len(items)} stored items "
                 f"checked, {len(matched)} matched, {len(rejected)} mentioned but rejected."]
        for stored, m in matched[:MAX_TEST_LINES]:
            lines.append(f"✓ {_title(stored)} — {m.alias!r} in the {m.field.value}")
        if len(matched) > MAX_TEST_LINES:
            lines.append(f"  …and {len(matched) - MAX_TEST_LINES} more matched")
        for stored, alias, reason in rejected[:MAX_TEST_LINES]:
            lines.append(f"✗ {_title(stored)} — {truncate(alias, 60)!r}: {truncate(reason, 160)}")
        if len(rejected) > MAX_TEST_LINES:
            lines.append(f"  …and {len(rejected) - MAX_TEST_LINES} more rejected")
        return lines

    # -- status and help ---------------------------------------------------------------
    async def status(self, ctx: ChannelContext) -> Reply:
        channel = await self.channel(ctx)
        now = self.clock.now()
        feeds = await self.storage.channel_feeds(channel.id)
        failing = [f for f in feeds if f.failing]
        polled = [f for f in feeds if f.last_success_at is not None and not f.failing]
        never = [f for f in feeds if f.last_success_at is None and not f.failing]
        lines = []
        if channel.paused_reason:
            lines.append(f"⚠ Posting to this channel is paused: {channel.paused_reason}. "
                         "Fix the bot's access, then run /digest schedule to resume.")
        lines.append(f"Feeds: {len(feeds)} ({len(polled)} ok, {len(failing)} failing, "
                     f"{len(never)} not polled yet)")
        for f in failing[:10]:
            since = _ago(f.last_error_at, now)
            lines.append(f"  ✗ {f.name}: {f.last_error or 'failing'} "
                         f"({f.consecutive_failures}× in a row, last {since})")
        if len(failing) > 10:
            lines.append(f"  …and {len(failing) - 10} more failing (see /feeds list)")
        tz = zone(channel.timezone)
        midnight = datetime.combine(now.astimezone(tz).date(), time(0), tzinfo=tz)
        mine = {f.id for f in feeds}
        today = [
            s for s in await self.storage.items_between(midnight, now + timedelta(seconds=1))
            if s.feed_id in mine and s.fetched_at >= midnight
        ]
        lines.append(f"Items stored today from this channel's feeds: {len(today)}")
        next_poll = self.schedule_info.next_poll() if self.schedule_info else None
        if next_poll is None:
            due = [f.next_poll_at for f in feeds if f.next_poll_at is not None]
            next_poll = min(due) if due else None
        if next_poll is not None:
            when = "due now" if next_poll <= now else _ago(next_poll, now)
            lines.append(f"Next poll: {format_day_time(next_poll, channel.timezone)} "
                         f"{channel.timezone} ({when})")
        else:
            lines.append("Next poll: not scheduled")
        if channel.digest_time:
            nxt = self.schedule_info.next_digest(channel) if self.schedule_info else None
            days = channel.digest_days or "every day"
            where = f"{channel.digest_time} {channel.timezone}, {days}"
            if nxt is not None:
                lines.append(f"Next digest: {format_day_time(nxt, channel.timezone)} ({where})")
            else:
                lines.append(f"Digest: {where} (not running)")
        else:
            lines.append("Digest: not scheduled (/digest schedule time:08:00 sets one)")
        if channel.last_digest_at is not None:
            last = format_day_time(channel.last_digest_at, channel.timezone)
            lines.append(f"Last digest: {last}")
        lines.append(f"Digests grouped by {channel.group_by} (/digest group changes it)")
        pending = await self.storage.pending_deliveries(channel.id)
        if pending:
            err = pending[-1].last_error
            lines.append(f"Waiting to post: {len(pending)}"
                         + (f" (last error: {err})" if err else ""))
        return Reply(lines=tuple(lines))

    async def help(self, ctx: ChannelContext, command: str | None = None) -> Reply:
        return Reply(lines=tuple(help_lines(command)))

    # -- autocomplete (for adapters) ---------------------------------------------------
    async def autocomplete(
        self, ctx: ChannelContext, what: Autocomplete, prefix: str, *, limit: int = 25
    ) -> list[tuple[str, str]]:
        """(label, value) suggestions for an option being typed."""
        needle = prefix.strip().casefold()
        if what is Autocomplete.TIMEZONE:
            zones = sorted(z for z in available_timezones() if needle in z.casefold())
            return [(z, z) for z in zones[:limit]]
        channel = await self.channel(ctx)
        if what is Autocomplete.ENTRY:
            view = await self.channel_watchlist(channel.id)
            return [
                (f"{e.name} ({e.id})", e.id) for e in view.watchlist.entries
                if needle in e.id or needle in e.name.casefold()
            ][:limit]
        feeds = await self.storage.channel_feeds(channel.id)
        return [
            (truncate(f"{f.name} — {f.url}", 100), f.url) for f in feeds
            if needle in f.name.casefold() or needle in f.url.casefold()
        ][:limit]

    # -- new items from the poller: channel entries and instant alerts -----------------
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
        recent = await self.storage.items_between(now - REMATCH_WINDOW, now + timedelta(
            seconds=1))
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
        view = await self.channel_watchlist(channel.id)
        if view.own_matcher is None:
            return 0
        feed_ids = await self._channel_feed_ids(channel.id)
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
            channel.id, now - ALERT_STORY_WINDOW, now + timedelta(minutes=1)
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


# -- formatting helpers ----------------------------------------------------------------


def _found_line(count: int, entry_id: str) -> str:
    days = REMATCH_WINDOW.days
    if count:
        return (f"{count} stored {'story' if count == 1 else 'stories'} from the last {days} "
                f"days match: /brief entry:{entry_id} hours:{days * 24} shows them.")
    return f"No stored story from the last {days} days matches yet."


def _refuse_credentials(url: str) -> None:
    """A feed URL with a user name or password would show them in /feeds list, in OPML
    exports and in logs: refused, with the reason."""
    try:
        parsed = URL(url)
    except (ValueError, TypeError):
        return  # not a URL at all: the guard says why
    if parsed.user is not None or parsed.password is not None:
        raise InputError(
            "Not added: feed URLs with a user name or password (user:password@host) are "
            "refused: everyone in the channel would see them in /feeds list and exports."
        )


def _with_scheme(url: str) -> str:
    if "://" not in url and re.match(r"^[\w.-]+\.[a-z]{2,}(?:[:/]|$)", url, re.I):
        return "https://" + url
    return url


def _not_a_feed(reason: str) -> str:
    reason = reason.strip()
    return reason if reason.lower().startswith("not a feed") else f"not a readable feed: {reason}"


def _title(stored: StoredItem) -> str:
    return truncate(plain(stored.item.title) or "(untitled)", 120)


def _item_lines(i: int, stored: StoredItem, tz: str, now: datetime) -> list[str]:
    when = format_day_time(stored.when, tz)
    lines = [f"{i}. {_title(stored)} — {stored.item.source} · {when}"]
    link = stored.item.canonical_link or stored.item.link
    if link:
        lines.append(f"    {link}")
    return lines


def _health_text(f: FeedHealth, now: datetime) -> str:
    parts = []
    if f.failing:
        parts.append(f"✗ failing ({f.consecutive_failures}× in a row): {f.last_error}")
        if f.last_success_at:
            parts.append(f"last success {_ago(f.last_success_at, now)}")
    elif f.last_success_at:
        parts.append(f"✓ ok, last success {_ago(f.last_success_at, now)}")
    else:
        parts.append("not polled yet")
    if f.next_poll_at is not None:
        parts.append("next poll due now" if f.next_poll_at <= now
                     else f"next poll {_ago(f.next_poll_at, now)}")
    if f.item_count:
        parts.append(f"{f.item_count} items stored")
    return " · ".join(parts)


def _describe_rules(e: Entry) -> str:
    parts = []
    if e.exclude:
        parts.append("not when part of " + ", ".join(repr(a.text) for a in e.exclude[:4]))
    if e.context:
        parts.append("only with " + " and ".join(
            "(" + "|".join(a.text for a in g[:4]) + ("|…" if len(g) > 4 else "") + ")"
            for g in e.context
        ))
    for r in e.rules[:3]:
        groups = " + ".join(
            "(" + "|".join(a.text for a in g[:3]) + ("|…" if len(g) > 3 else "") + ")"
            for g in r.all
        )
        where = " in one sentence" if r.scope == "sentence" else (
            f" within {r.window} words" if r.window else "")
        parts.append(f"{groups}{where}")
    if len(e.rules) > 3:
        parts.append(f"+{len(e.rules) - 3} more rules")
    return "; ".join(parts)
