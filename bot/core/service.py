"""The use cases every chat adapter calls, behind one facade: :class:`BriefingService`.

Adapters turn a platform event into a :class:`~bot.core.replies.ChannelContext` (who,
where, may they manage) plus a command name and arguments, and call
:meth:`BriefingService.dispatch` (:mod:`bot.core.usecases.dispatch`). The use cases
themselves live in :mod:`bot.core.usecases`, one module per concern; this class only
builds them around shared dependencies (one channel cache for all of them) and maps
each command to its handler.
"""

from __future__ import annotations

from typing import Any

from bot.core.clock import Clock
from bot.core.commands import Autocomplete
from bot.core.delivery import Outbox
from bot.core.options import ServiceOptions
from bot.core.ports import Storage
from bot.core.probe import FeedProber
from bot.core.replies import ChannelContext, Reply
from bot.core.usecases.alerts import Alerts
from bot.core.usecases.briefs import Briefs
from bot.core.usecases.channels import Channels
from bot.core.usecases.digests import DigestCommands, Digests, ScheduleChanged, ScheduleInfo
from bot.core.usecases.dispatch import MANAGE_DENIED, Dispatcher, Handler
from bot.core.usecases.feeds import FeedCommands, PollFeeds
from bot.core.usecases.status import StatusCommands
from bot.core.usecases.tracking import Tracking
from bot.core.watchlist import Watchlist

__all__ = ["MANAGE_DENIED", "BriefingService"]


class BriefingService:
    """Every command's use case, composed. ``channels``, ``digests`` and ``alerts`` may
    be passed in when the composition root built them first (the scheduler runs
    ``digests``, the poller hands new items to ``alerts``); they share ``channels``."""

    def __init__(
        self,
        *,
        storage: Storage,
        clock: Clock,
        options: ServiceOptions,
        watchlist: Watchlist,
        prober: FeedProber,
        schedule_info: ScheduleInfo | None = None,
        on_schedule_changed: ScheduleChanged | None = None,
        outbox: Outbox | None = None,
        poll_feeds: PollFeeds | None = None,
        channels: Channels | None = None,
        digests: Digests | None = None,
        alerts: Alerts | None = None,
    ) -> None:
        self.channels = channels or Channels(storage, watchlist, options)
        self.digests = digests or Digests(
            storage=storage,
            clock=clock,
            options=options,
            channels=self.channels,
            outbox=outbox,
        )
        self.alerts = alerts or Alerts(
            storage=storage, clock=clock, channels=self.channels, outbox=outbox
        )
        self.briefs = Briefs(
            storage=storage,
            clock=clock,
            options=options,
            channels=self.channels,
            digests=self.digests,
        )
        self.digest_commands = DigestCommands(
            storage=storage,
            clock=clock,
            channels=self.channels,
            digests=self.digests,
            outbox=outbox,
            schedule_info=schedule_info,
            on_schedule_changed=on_schedule_changed,
        )
        self.tracking = Tracking(
            storage=storage, clock=clock, options=options, channels=self.channels
        )
        self.feeds = FeedCommands(
            storage=storage,
            clock=clock,
            options=options,
            channels=self.channels,
            prober=prober,
            poll_feeds=poll_feeds,
        )
        self.status_commands = StatusCommands(
            storage=storage, clock=clock, channels=self.channels, schedule_info=schedule_info
        )
        self.dispatcher = Dispatcher(
            {
                "brief": self.briefs.brief,
                "search": self.briefs.search,
                "digest now": self.digest_commands.digest_now,
                "digest schedule": self.digest_commands.schedule_digest,
                "digest off": self.digest_commands.digest_off,
                "digest group": self.digest_commands.digest_group,
                "track": self.tracking.track,
                "untrack": self.tracking.untrack,
                "watchlist": self.tracking.show_watchlist,
                "test": self.tracking.test,
                "feeds add": self.feeds.feeds_add,
                "feeds remove": self.feeds.feeds_remove,
                "feeds list": self.feeds.feeds_list,
                "feeds import": self.feeds.feeds_import,
                "feeds export": self.feeds.feeds_export,
                "status": self.status_commands.status,
                "help": self.status_commands.help,
            }
        )
        # what adapters, the scheduler and the poller call
        self.channel = self.channels.channel
        self.build_channel_digest = self.digests.build_channel_digest
        self.send_scheduled_digest = self.digests.send_scheduled_digest
        self.handle_new_items = self.alerts.handle_new_items
        self.recover_interrupted_poll = self.alerts.recover_interrupted_poll
        self.brief = self.briefs.brief

    @property
    def _handlers(self) -> dict[str, Handler]:
        """The dispatcher's map (tests swap a handler to slow it down or break it)."""
        return self.dispatcher.handlers

    async def dispatch(self, ctx: ChannelContext, command: str, args: dict[str, Any]) -> Reply:
        return await self.dispatcher.dispatch(ctx, command, args)

    async def autocomplete(
        self, ctx: ChannelContext, what: Autocomplete, prefix: str, *, limit: int = 25
    ) -> list[tuple[str, str]]:
        """(label, value) suggestions for an option being typed."""
        return await self.status_commands.autocomplete(ctx, what, prefix, limit=limit)
