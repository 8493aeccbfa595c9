"""The composition root: the one place that wires settings, storage, fetcher, clock,
matcher, service, outbox, scheduler and adapters together.

Tests, the console and the demo build the same App with fakes swapped in through the
keyword arguments of :func:`build_app` (a storage on ``sqlite+aiosqlite:///:memory:``, a
FakeClock, extra sinks, an allowlist for loopback feed servers)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from bot.config import Settings, config_dir, load_settings
from bot.core.clock import Clock, SystemClock
from bot.core.cycle import CycleStorage
from bot.core.delivery import Outbox, Sink
from bot.core.matching import compile_watchlist
from bot.core.models import FeedSource
from bot.core.options import ServiceOptions
from bot.core.ports import Storage
from bot.core.service import BriefingService
from bot.core.usecases.alerts import Alerts
from bot.core.usecases.channels import Channels
from bot.core.usecases.digests import Digests
from bot.core.watchlist import Watchlist
from bot.errors import BriefbotError
from bot.feeds.fetch import Fetcher
from bot.feeds.guard import make_url_guard
from bot.feeds.parse import ParserPool
from bot.feeds.poll import Poller
from bot.feeds.probe import FeedProbe
from bot.feeds.sources import load_feed_sources
from bot.scheduling import Scheduler
from bot.storage.sql import SqlStorage
from bot.watchlist_files import load_effective_watchlist

log = logging.getLogger(__name__)


@dataclass
class Config:
    """Everything read from files, validated, before anything starts."""

    settings: Settings
    cfg_dir: Path | None
    watchlist: Watchlist
    feeds: list[FeedSource]


def load_config(explicit_dir: str | Path | None = None) -> Config:
    cfg_dir = config_dir(explicit_dir)
    settings = load_settings(cfg_dir)
    watchlist = load_effective_watchlist(cfg_dir)
    compile_watchlist(watchlist)  # a watchlist that cannot compile is a config error now
    feeds = load_feed_sources(cfg_dir)
    return Config(settings=settings, cfg_dir=cfg_dir, watchlist=watchlist, feeds=feeds)


@dataclass
class App:
    config: Config
    storage: Storage
    fetcher: Fetcher
    clock: Clock
    poller: Poller
    service: BriefingService
    outbox: Outbox
    scheduler: Scheduler
    sinks: dict[str, Sink] = field(default_factory=dict)

    @property
    def settings(self) -> Settings:
        return self.config.settings

    async def open(self) -> None:
        """Migrate the database, sync config feeds, open the HTTP session."""
        await self.storage.open()
        await self.storage.sync_config_feeds(self.config.feeds)
        await self.fetcher.start()

    async def close(self) -> None:
        """Stop in order: the scheduler first (no new job; a running poll or digest gets
        a bounded time to finish, then is cancelled cleanly), and only then the HTTP
        session and the database it was using."""
        try:
            await self.scheduler.shutdown()
        finally:
            try:
                await self.fetcher.close()
            finally:
                self.poller.parser.close()  # the parser pool's workers (none if unused)
                await self.storage.close()

    async def __aenter__(self) -> App:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def add_sink(self, platform: str, sink: Sink) -> None:
        self.sinks[platform] = sink


def service_options(settings: Settings) -> ServiceOptions:
    """What the core's use cases need of the settings."""
    return ServiceOptions(
        default_timezone=settings.digest.default_timezone,
        default_time=settings.digest.default_time,
        group_by=settings.digest.group_by,
        max_stories=settings.digest.max_stories,
        brief_hours=settings.digest.brief_hours,
        poll_interval_minutes=settings.poll.interval_minutes,
        max_item_age=timedelta(hours=settings.digest.max_item_age)
        if settings.digest.max_item_age
        else None,
        language=settings.digest.language,
    )


def build_app(
    config: Config,
    *,
    storage: CycleStorage | None = None,
    fetcher: Fetcher | None = None,
    clock: Clock | None = None,
    sinks: Mapping[str, Sink] | None = None,
    database_url: str | None = None,
) -> App:
    """Build everything once, each part after what it needs: storage, fetcher, clock and
    outbox; the channel view, the digest builder and the alert fan-out; the poller (new
    items go to the alert fan-out); the scheduler (it runs the poller and the digest
    builder); last the service, which asks the scheduler for next runs."""
    settings = config.settings
    options = service_options(settings)
    clock = clock or SystemClock()
    if storage is None:
        url = database_url or settings.storage.resolved_url()
        storage = SqlStorage(url)
    fetcher = fetcher or Fetcher(settings.http, settings.poll)
    sink_map: dict[str, Sink] = dict(sinks or {})
    outbox = Outbox(storage, clock, sink_map)
    default_matcher = compile_watchlist(config.watchlist)

    channels = Channels(storage, config.watchlist, options)
    digests = Digests(
        storage=storage, clock=clock, options=options, channels=channels, outbox=outbox
    )
    alerts = Alerts(storage=storage, clock=clock, channels=channels, outbox=outbox)

    # Feeds added from chat are untrusted: the same SSRF guard checks them when added
    # (service) and at every later fetch and redirect (poller).
    url_guard = make_url_guard(settings.security.allow_hosts)
    # one parser pool for the poller and for probing feeds added from chat
    # the workers compile the default watchlist once and match what they parse
    parser = ParserPool(watchlist=config.watchlist)
    prober = FeedProbe(fetcher=fetcher, parser=parser, url_guard=url_guard, clock=clock)
    poller = Poller(
        storage,
        fetcher,
        lambda: default_matcher,
        clock,
        settings,
        parser=parser,
        on_new_items=alerts.handle_new_items,
        chat_url_guard=url_guard,
    )

    recovered = False

    async def run_poll() -> object:
        nonlocal recovered
        if not recovered:
            # the first cycle of a run first finishes what a cycle cut short at the last
            # shutdown may have left (items stored, not yet matched or alerted)
            recovered = True
            try:
                await alerts.recover_interrupted_poll(default_matcher)
            except BriefbotError as err:
                log.warning("re-checking the last poll cycle failed: %s", err)
        return await poller.poll_once()

    scheduler = Scheduler(
        settings=settings,
        storage=storage,
        clock=clock,
        run_poll=run_poll,
        run_digest=digests.send_scheduled_digest,
        retry_deliveries=outbox.retry_pending,
    )

    async def poll_feeds(feed_ids: list[int]) -> object:
        return await poller.poll_once(feed_ids=feed_ids)

    service = BriefingService(
        storage=storage,
        clock=clock,
        options=options,
        watchlist=config.watchlist,
        prober=prober,
        schedule_info=scheduler,
        on_schedule_changed=scheduler.on_schedule_changed,
        outbox=outbox,
        poll_feeds=poll_feeds,
        channels=channels,
        digests=digests,
        alerts=alerts,
    )
    return App(
        config=config,
        storage=storage,
        fetcher=fetcher,
        clock=clock,
        poller=poller,
        service=service,
        outbox=outbox,
        scheduler=scheduler,
        sinks=sink_map,
    )


__all__ = [
    "App",
    "Config",
    "build_app",
    "load_config",
    "load_effective_watchlist",
    "service_options",
]
