"""The per-channel view: a channel's record, created on first use, and its effective
watchlist.

A channel's effective watchlist is the default watchlist minus the entries it disabled,
with its own entries (``/track``) added or replacing defaults of the same id; it is
compiled once and cached per channel until the channel's entries change
(:meth:`Channels.invalidate`).
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from bot.core.matching import Matcher, compile_watchlist
from bot.core.options import ServiceOptions
from bot.core.ports import ChannelEntryRecord, ChannelRecord, Storage
from bot.core.replies import ChannelContext
from bot.core.watchlist import Entry, Watchlist, slugify
from bot.errors import InputError, NotFoundError

log = logging.getLogger(__name__)


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


class Channels:
    """Channel records and their effective watchlists (one instance per app: every use
    case shares its cache)."""

    def __init__(self, storage: Storage, watchlist: Watchlist, options: ServiceOptions) -> None:
        self.storage = storage
        #: the default watchlist (config), which every channel starts from
        self.default_watchlist = watchlist
        self.options = options
        self._views: dict[int, ChannelWatchlist] = {}
        #: channels known to exist, per platform loaded once (a new one gets defaults)
        self._known_channels: set[tuple[str, str]] = set()
        self._loaded_platforms: set[str] = set()

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
            default_tz=self.options.default_timezone,
        )
        if key not in self._known_channels:  # created just now
            self._known_channels.add(key)
            wanted = self.options.group_by
            if record.group_by != wanted:
                record = await self.storage.set_group_by(record.id, wanted)
        return record

    def invalidate(self, channel_id: int) -> None:
        self._views.pop(channel_id, None)

    async def watchlist(self, channel_id: int) -> ChannelWatchlist:
        """The channel's effective watchlist, compiled (cached)."""
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
                log.warning("channel %s: own entry %s unusable: %s", channel_id, rec.entry_id, err)
                continue
            own[rec.entry_id] = rec
        defaults = frozenset(self.default_watchlist.ids)
        entries = [
            own_entries.get(e.id, e)
            for e in self.default_watchlist.entries
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

    async def feed_ids(self, channel_id: int) -> set[int]:
        """The ids of the feeds the channel follows."""
        return {f.id for f in await self.storage.channel_feeds(channel_id)}


def resolve_entry(view: ChannelWatchlist, text: str, *, extra: Sequence[Entry] = ()) -> Entry:
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
