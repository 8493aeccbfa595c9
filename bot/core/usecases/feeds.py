"""A channel's feeds: ``/feeds add``, ``remove``, ``list``, ``import`` and ``export``.

The one place a command touches the network: an untrusted URL (``/feeds add``,
``/feeds import``) is probed before it is accepted: checked by the SSRF guard, fetched
once and parsed in the parser pool, through the :class:`~bot.core.probe.FeedProber` port
(the poller's own fetch-and-parse path, ``bot.feeds.probe``). A feed polled already
(from the config or another channel) is trusted without a fetch.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime

from bot.core.clock import Clock
from bot.core.digest import format_time
from bot.core.format import ago
from bot.core.links import canonical_link
from bot.core.models import FeedHealth, FeedSource
from bot.core.opml import export_opml, parse_opml
from bot.core.options import ServiceOptions
from bot.core.ports import Storage
from bot.core.probe import FeedProber, refuse_credentials, with_scheme
from bot.core.replies import Attachment, ChannelContext, Reply
from bot.core.safety import inert
from bot.core.usecases.channels import Channels
from bot.errors import InputError, NotFoundError

log = logging.getLogger(__name__)

MAX_IMPORT = 100
IMPORT_CONCURRENCY = 4


#: polls the given feeds now (the poller)
PollFeeds = Callable[[list[int]], Awaitable[object]]


class FeedCommands:
    def __init__(
        self,
        *,
        storage: Storage,
        clock: Clock,
        options: ServiceOptions,
        channels: Channels,
        prober: FeedProber,
        poll_feeds: PollFeeds | None = None,
    ) -> None:
        self.storage = storage
        self.clock = clock
        self.options = options
        self.channels = channels
        self.prober = prober
        #: a feed added from chat is stored and polled at once, so /brief shows its
        #: stories without waiting for the next tick
        self.poll_feeds = poll_feeds

    async def feeds_add(self, ctx: ChannelContext, url: str, name: str | None = None) -> Reply:
        url = with_scheme(url.strip())
        refuse_credentials(url)
        channel = await self.channels.channel(ctx)
        existing = await self.storage.channel_feeds(channel.id)
        key = feed_key(url)
        same = next((f for f in existing if f.url == url or feed_key(f.url) == key), None)
        if same is not None:
            also = "" if same.url == url else f" (as {same.url})"
            raise InputError(f"This channel already follows {url}{also}: {_name(same.name)}.")
        minutes = self.options.poll_interval_minutes
        known = await self._known_feed(url)
        if known is not None:  # polled already (config, or another channel's): no fetch
            await self.storage.add_feed(FeedSource(known.url, known.name), channel_id=channel.id)
            return Reply.message(
                f"Added {_name(known.name)} ({_health_text(known, self.clock.now())})."
            )
        probed = await self.prober.probe(url, name)
        source, count = probed.source, probed.items
        state = await self.storage.add_feed(source, channel_id=channel.id)
        if self.poll_feeds is not None:
            try:
                await self.poll_feeds([state.id])
            except Exception:  # the feed is added; the scheduler's next tick polls it
                log.exception("first poll of %s failed", source.url)
        moved = f" (it moved to {source.url})" if source.url != url else ""
        return Reply.message(
            f"Added {_name(source.name)}{moved}: {count} {'item' if count == 1 else 'items'} in "
            f"the feed now. New stories are checked every {minutes:g} min."
        )

    async def _known_feed(self, url: str) -> FeedHealth | None:
        """A feed polled already under this URL, or another form of it (tracking
        parameters, trailing slash, http/https)."""
        found = await self.storage.feed_by_url(url)
        if found is not None:
            return found
        key = feed_key(url)
        return next((f for f in await self.storage.all_feeds() if feed_key(f.url) == key), None)

    async def _resolve_feed(self, channel_id: int, text: str) -> FeedHealth:
        feeds = await self.storage.channel_feeds(channel_id)
        query = text.strip()
        if query.isdigit() and 1 <= int(query) <= len(feeds):
            return feeds[int(query) - 1]
        for f in feeds:
            if f.url == query or f.url == with_scheme(query):
                return f
        if "." in query and " " not in query:  # another form of a followed feed's URL
            key = feed_key(query)
            same = [f for f in feeds if feed_key(f.url) == key]
            if len(same) == 1:
                return same[0]
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
        channel = await self.channels.channel(ctx)
        found = await self._resolve_feed(channel.id, feed)
        await self.storage.remove_feed(channel.id, found.id)
        return Reply.message(f"Removed {_name(found.name)} ({found.url}) from this channel.")

    async def feeds_list(self, ctx: ChannelContext) -> Reply:
        channel = await self.channels.channel(ctx)
        feeds = await self.storage.channel_feeds(channel.id)
        if not feeds:
            return Reply.message("This channel follows no feeds. Add one with /feeds add.")
        now = self.clock.now()
        failing = sum(1 for f in feeds if f.failing)
        lines = [f"{len(feeds)} feeds ({failing} failing):"]
        for i, f in enumerate(feeds, 1):
            lines.append(f"{i}. {_name(f.name)} — {f.url}")
            lines.append("    " + _health_text(f, now, channel.timezone))
        return Reply(lines=tuple(lines))

    async def feeds_import(self, ctx: ChannelContext, file: bytes) -> Reply:
        sources = parse_opml(file)
        channel = await self.channels.channel(ctx)
        have = {feed_key(f.url) for f in await self.storage.channel_feeds(channel.id)}
        new = []
        for src in sources:  # each feed once, and none the channel follows (in any form)
            if feed_key(src.url) not in have:
                have.add(feed_key(src.url))
                new.append(src)
        if len(new) > MAX_IMPORT:
            raise InputError(
                f"The file lists {len(new)} new feeds; import at most {MAX_IMPORT} at a time."
            )
        sem = asyncio.Semaphore(IMPORT_CONCURRENCY)

        all_feeds = await self.storage.all_feeds()
        known = {f.url: f for f in all_feeds}
        known.update({feed_key(f.url): f for f in all_feeds if feed_key(f.url) not in known})

        async def check(src: FeedSource) -> tuple[FeedSource, FeedSource | None, str]:
            try:
                refuse_credentials(src.url)
            except InputError as err:
                return src, None, str(err).removeprefix("Not added: ")
            polled = known.get(src.url) or known.get(feed_key(src.url))
            if polled is not None:  # polled already: no need to fetch it to trust it
                return src, FeedSource(polled.url, polled.name, src.lang), ""
            async with sem:
                try:
                    ok = (await self.prober.probe(with_scheme(src.url), src.name)).source
                except InputError as err:
                    return src, None, str(err).removeprefix("Not added: ")
                return src, FeedSource(ok.url, ok.name, src.lang), ""

        results = await asyncio.gather(*(check(s) for s in new))
        added: list[FeedSource] = []
        refused: list[str] = []
        for src, ok, why in results:
            if ok is None:
                refused.append(f"  ✗ {_name(src.name)}: {why}")
                continue
            try:
                await self.storage.add_feed(ok, channel_id=channel.id)
            except InputError as err:  # the same feed twice under two URLs
                refused.append(f"  ✗ {_name(src.name)}: {err}")
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
        channel = await self.channels.channel(ctx)
        feeds = await self.storage.channel_feeds(channel.id)
        title = f"Briefbot feeds: {ctx.channel_name or channel.external_id}"
        data = export_opml(
            (FeedSource(f.url, f.name) for f in feeds), title=title, created=self.clock.now()
        )
        return Reply(
            lines=(
                f"{len(feeds)} feeds as OPML (import them in a feed reader, or with "
                "/feeds import elsewhere).",
            ),
            attachment=Attachment("briefbot-feeds.opml", data, "text/x-opml"),
        )


def feed_key(url: str) -> str:
    """A feed URL for comparison: :func:`~bot.core.links.canonical_link` (tracking
    parameters, fragment and trailing slash dropped, host lower-cased), without its
    scheme (one feed on http and https). A URL with credentials stays itself (it is
    refused as such, never taken for the feed without them)."""
    url = url.strip()
    if "@" in url.partition("://")[2].partition("/")[0]:
        return url
    canon = canonical_link(with_scheme(url)) or url
    return canon.partition("://")[2] or canon


def _name(name: str) -> str:
    """A feed's name (from the feed itself: untrusted) made inert for a reply line: no
    mention, no link, no bidi control."""
    return inert(name, markdown=False)


def _health_text(f: FeedHealth, now: datetime, tz: str | None = None) -> str:
    def at(when: datetime) -> str:
        if tz is None:
            return ago(when, now)
        return f"{format_time(when, tz, now=now)} ({ago(when, now)})"

    parts = []
    if f.failing:
        parts.append(f"✗ failing ({f.consecutive_failures}× in a row): {f.last_error}")
        if f.last_success_at:
            parts.append(f"last success {at(f.last_success_at)}")
    elif f.last_success_at:
        parts.append(f"✓ ok, last success {at(f.last_success_at)}")
    else:
        parts.append("not polled yet")
    if f.next_poll_at is not None:
        parts.append(
            "next poll due now" if f.next_poll_at <= now else f"next poll {at(f.next_poll_at)}"
        )
    if f.item_count:
        parts.append(f"{f.item_count} items stored")
    return " · ".join(parts)
