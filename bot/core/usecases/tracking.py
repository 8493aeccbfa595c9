"""What a channel tracks: ``/track``, ``/untrack``, ``/watchlist`` and ``/test``.

``/track`` adds a channel's own entry (or re-enables, or makes a channel copy of, a
default entry) and re-matches the channel's recent stored items with it, so ``/brief``
shows them at once. ``/test`` explains a text against the channel's watchlist, or
previews what one entry matched recently.
"""

from __future__ import annotations

from datetime import timedelta

from bot.core.clock import Clock
from bot.core.format import item_title
from bot.core.matching import compile_watchlist
from bot.core.models import EntryKind, Match, StoredItem
from bot.core.options import ServiceOptions
from bot.core.ports import ChannelRecord, Storage
from bot.core.replies import ChannelContext, Reply
from bot.core.text import truncate
from bot.core.usecases.channels import Channels, ChannelWatchlist, resolve_entry
from bot.core.watchlist import Alias, Entry, Watchlist, slugify
from bot.core.watchlist_user import add_user_aliases, make_user_entry
from bot.errors import InputError

#: how far back /track re-matches stored items with a new entry
REMATCH_WINDOW = timedelta(days=7)
MAX_TEST_LINES = 12


class Tracking:
    def __init__(
        self, *, storage: Storage, clock: Clock, options: ServiceOptions, channels: Channels
    ) -> None:
        self.storage = storage
        self.clock = clock
        self.options = options
        self.channels = channels

    # -- /track and /untrack -----------------------------------------------------------
    async def track(
        self,
        ctx: ChannelContext,
        kind: str,
        name: str,
        aliases: str | None = None,
        mode: str | None = None,
    ) -> Reply:
        channel = await self.channels.channel(ctx)
        view = await self.channels.watchlist(channel.id)
        slug = slugify(name)
        own = _own_entry(view, slug, name)
        if own is not None:
            return await self._edit(
                channel, view=view, entry=own, kind=kind, aliases=aliases, mode=mode
            )
        mode = mode or "digest"
        default = self.channels.default_watchlist.get(slug) if slug else None
        if default is not None and slug not in view.own:
            entry, note = _adapt_default(default, kind, aliases, mode, view)
            if entry is None:  # re-enable a disabled default as it is
                await self.storage.enable_default_entry(channel.id, default.id)
                self.channels.invalidate(channel.id)
                now = self.clock.now()
                recent = await self.storage.matched_items(
                    channel.id,
                    now - REMATCH_WINDOW,
                    now + timedelta(seconds=1),
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
        self.channels.invalidate(channel.id)
        found = await self._rematch(channel, entry)
        when = "posted at once and in the digest" if mode == "instant" else "in the digest"
        lines = [
            f"Tracking {entry.name} ({entry.kind.value}, id {entry.id}): {when}.",
            f"Matches: {_shown_aliases(entry)}.",
        ]
        if note:
            lines.append(note)
        lines.append(found)
        return Reply(lines=tuple(lines))

    async def _edit(
        self,
        channel: ChannelRecord,
        *,
        view: ChannelWatchlist,
        entry: Entry,
        kind: str,
        aliases: str | None,
        mode: str | None,
    ) -> Reply:
        """/track of an entry the channel has already (its own, or its copy of a
        default): add the aliases given and/or change the mode."""
        if entry.kind.value != (kind or "").strip().lower():
            raise InputError(
                f"{entry.name} ({entry.id}) is tracked here as a {entry.kind.value}; "
                f'/track kind:{entry.kind.value} name:"{entry.name}" aliases:... adds '
                "aliases to it."
            )
        old_mode = view.own[entry.id].mode
        new_mode = mode or old_mode
        updated, added = add_user_aliases(entry, aliases or "") if aliases else (entry, [])
        if not added and new_mode == old_mode:
            shown = ", ".join(a.text for a in entry.aliases[:8])
            raise InputError(
                f"{entry.name} ({entry.id}) is already tracked here with these aliases "
                f"({shown}): give aliases:... to add some, or mode:... to change how it is "
                f"posted. /untrack {entry.id} first to start it over."
            )
        await self.storage.put_channel_entry(
            channel.id, updated.id, updated.to_definition(), new_mode
        )
        self.channels.invalidate(channel.id)
        lines = [f"Updated {updated.name} ({updated.id}):"]
        if added:
            lines.append(f"Added aliases: {', '.join(added)}.")
            lines.append(f"Matches: {_shown_aliases(updated)}.")
        if new_mode != old_mode:
            when = "posted at once and in the digest" if new_mode == "instant" else "in the digest"
            lines.append(f"Now {when}.")
        lines.append(await self._rematch(channel, updated))
        return Reply(lines=tuple(lines))

    async def _rematch(self, channel: ChannelRecord, entry: Entry) -> str:
        """Match the channel's recent stored items with ``entry`` (so /brief shows them
        at once); returns a line saying how many matched."""
        now = self.clock.now()
        matcher = compile_watchlist(Watchlist(entries=(entry,)))
        feed_ids = await self.channels.feed_ids(channel.id)
        count = 0
        for stored in await self.storage.items_between(
            now - REMATCH_WINDOW, now + timedelta(seconds=1)
        ):
            if stored.feed_id not in feed_ids:
                continue
            found = matcher.match(stored.item.title, stored.item.summary)
            if found:
                await self.storage.add_matches(stored.id, found, scope=channel.id)
                count += 1
        return _found_line(count, entry.id)

    async def untrack(self, ctx: ChannelContext, entry: str) -> Reply:
        channel = await self.channels.channel(ctx)
        view = await self.channels.watchlist(channel.id)
        found = resolve_entry(view, entry)
        await self.storage.remove_channel_entry(channel.id, found.id)
        self.channels.invalidate(channel.id)
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
            f'(/track kind:{found.kind.value} name:"{found.name}" brings it back).'
        )

    # -- /watchlist --------------------------------------------------------------------
    async def show_watchlist(self, ctx: ChannelContext) -> Reply:
        channel = await self.channels.channel(ctx)
        view = await self.channels.watchlist(channel.id)
        lines: list[str] = []
        for kind, title in ((EntryKind.ACTOR, "Actors"), (EntryKind.TOPIC, "Topics")):
            group = [e for e in view.watchlist.entries if e.kind is kind]
            if not group:
                continue
            lines.append(f"{title} ({len(group)}):")
            for e in group:
                lines.extend(_entry_lines(e, view))
        if not lines:
            lines.append("This channel tracks nothing. Add an entry with /track.")
        if view.disabled:
            off = sorted(d for d in view.disabled if d not in view.own)
            if off:
                lines.append(f"Default entries turned off here: {', '.join(off)}.")
        return Reply(lines=tuple(lines))

    # -- /test -------------------------------------------------------------------------
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
        channel = await self.channels.channel(ctx)
        view = await self.channels.watchlist(channel.id)
        if text is not None:
            return Reply(lines=tuple(_explain_text(view, text)))
        assert entry is not None
        return Reply(lines=tuple(await self._preview_entry(channel, view, entry, hours)))

    async def _preview_entry(
        self, channel: ChannelRecord, view: ChannelWatchlist, text: str, hours: int | None
    ) -> list[str]:
        found = resolve_entry(view, text)
        hours = hours or self.options.brief_hours
        now = self.clock.now()
        feed_ids = await self.channels.feed_ids(channel.id)
        items = [
            s
            for s in await self.storage.items_between(
                now - timedelta(hours=hours), now + timedelta(seconds=1)
            )
            if s.feed_id in feed_ids
        ]
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
        lines = [
            f"{found.name} ({found.id}) in the last {hours} h: {len(items)} stored items "
            f"checked, {len(matched)} matched, {len(rejected)} mentioned but rejected."
        ]
        for stored, m in matched[:MAX_TEST_LINES]:
            lines.append(f"✓ {item_title(stored)} — {m.alias!r} in the {m.field.value}")
        if len(matched) > MAX_TEST_LINES:
            lines.append(f"  …and {len(matched) - MAX_TEST_LINES} more matched")
        for stored, alias, reason in rejected[:MAX_TEST_LINES]:
            lines.append(
                f"✗ {item_title(stored)} — {truncate(alias, 60)!r}: {truncate(reason, 160)}"
            )
        if len(rejected) > MAX_TEST_LINES:
            lines.append(f"  …and {len(rejected) - MAX_TEST_LINES} more rejected")
        return lines


def _own_entry(view: ChannelWatchlist, slug: str, name: str) -> Entry | None:
    """The channel's own entry (or copy of a default) that /track name:... names."""
    if slug and slug in view.own_entries:
        return view.own_entries[slug]
    folded = name.strip().casefold()
    return next((e for e in view.own_entries.values() if e.name.casefold() == folded), None)


def _shown_aliases(entry: Entry) -> str:
    more = f" (+{len(entry.aliases) - 8} more)" if len(entry.aliases) > 8 else ""
    return ", ".join(a.text for a in entry.aliases[:8]) + more


def _adapt_default(
    default: Entry, kind: str, aliases: str | None, mode: str, view: ChannelWatchlist
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


def _explain_text(view: ChannelWatchlist, text: str) -> list[str]:
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
        lines.append(
            f"✗ {name} ({c.entry_id}): {truncate(c.alias, 60)!r} found but not "
            f"counted: {truncate(c.reason, 160)}"
        )
    if not lines:
        lines.append("No entry of this channel's watchlist matches this text.")
    return lines[: MAX_TEST_LINES * 2]


def _found_line(count: int, entry_id: str) -> str:
    days = REMATCH_WINDOW.days
    if count:
        return (
            f"{count} stored {'story' if count == 1 else 'stories'} from the last {days} "
            f"days match: /brief entry:{entry_id} hours:{days * 24} shows them."
        )
    return f"No stored story from the last {days} days matches yet."


def _entry_lines(e: Entry, view: ChannelWatchlist) -> list[str]:
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


def _describe_rules(e: Entry) -> str:
    parts = []
    if e.exclude:
        parts.append("not when part of " + ", ".join(repr(a.text) for a in e.exclude[:4]))
    if e.context:
        parts.append(
            "only with "
            + " and ".join(
                "(" + "|".join(a.text for a in g[:4]) + ("|…" if len(g) > 4 else "") + ")"
                for g in e.context
            )
        )
    for r in e.rules[:3]:
        groups = " + ".join(
            "(" + "|".join(a.text for a in g[:3]) + ("|…" if len(g) > 3 else "") + ")"
            for g in r.all
        )
        where = (
            " in one sentence"
            if r.scope == "sentence"
            else (f" within {r.window} words" if r.window else "")
        )
        order = ", in this order" if r.ordered else ""
        parts.append(f"{groups}{where}{order}")
    if len(e.rules) > 3:
        parts.append(f"+{len(e.rules) - 3} more rules")
    if e.unless:
        parts.append(
            "not when the title or lead says "
            + ", ".join(repr(a.text) for a in e.unless[:4])
            + (", …" if len(e.unless) > 4 else "")
        )
    return "; ".join(parts)
