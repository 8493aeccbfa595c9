"""The per-channel view: a channel's record, created on first use, and its watchlist."""

from __future__ import annotations

from bot.app import service_options
from bot.config import Settings
from bot.core.clock import FakeClock
from bot.core.replies import ChannelContext
from bot.core.service import BriefingService
from bot.feeds.fetch import Fetcher
from bot.feeds.guard import make_url_guard
from bot.feeds.parse import ParserPool
from bot.feeds.probe import FeedProbe
from bot.storage.sql import SqlStorage
from bot.watchlist_files import default_watchlist
from usecases.env import (
    ADMIN,
)


async def test_unusable_stored_entry_is_skipped_not_fatal(
    service: BriefingService, storage: SqlStorage
) -> None:
    channel = await service.channel(ADMIN)
    await storage.put_channel_entry(channel.id, "broken", {"id": "broken", "kind": "x"}, "digest")
    reply = await service.dispatch(ADMIN, "watchlist", {})
    assert not reply.error
    assert "broken" not in reply.text


async def test_new_channels_take_the_configured_grouping(
    storage: SqlStorage, clock: FakeClock
) -> None:
    settings = Settings(digest={"group_by": "story"})  # type: ignore[arg-type]
    async with Fetcher(settings.http, settings.poll) as fetcher:
        service = BriefingService(
            storage=storage,
            clock=clock,
            options=service_options(settings),
            watchlist=default_watchlist(),
            prober=FeedProbe(
                fetcher=fetcher, parser=ParserPool(kind="thread"), url_guard=make_url_guard([])
            ),
        )
        existing = await storage.get_channel("console", "old")  # before this setting
        assert (await service.channel(ADMIN)).group_by == "story"
        assert (await storage.channel_by_id(existing.id)).group_by == "entry"
        old_ctx = ChannelContext("console", "old", user="ann", can_manage=True)
        assert (await service.channel(old_ctx)).group_by == "entry"  # not overridden
        # a channel's own choice is kept afterwards
        await service.dispatch(ADMIN, "digest group", {"by": "entry"})
        assert (await service.channel(ADMIN)).group_by == "entry"
