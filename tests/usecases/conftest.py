"""The use cases on real SQLite storage, a real fetcher and a loopback feed server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from feedserver import FeedServer

from bot.app import App, Config, build_app, service_options
from bot.config import SecuritySettings, Settings
from bot.core.clock import FakeClock
from bot.core.service import BriefingService
from bot.feeds.fetch import Fetcher
from bot.feeds.guard import make_url_guard
from bot.feeds.parse import ParserPool
from bot.feeds.probe import FeedProbe
from bot.storage.sql import SqlStorage
from bot.watchlist_files import default_watchlist
from usecases.env import (
    NOW,
    OTHER,
    WIRE,
    FakeSchedule,
    RecordingSink,
)


@pytest.fixture
async def storage() -> AsyncIterator[SqlStorage]:
    s = SqlStorage("sqlite+aiosqlite:///:memory:")
    await s.open()
    await s.sync_config_feeds([WIRE, OTHER])
    yield s
    await s.close()


@pytest.fixture
async def server() -> AsyncIterator[FeedServer]:
    async with FeedServer() as srv:
        yield srv


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOW)


@pytest.fixture
def schedule() -> FakeSchedule:
    return FakeSchedule(poll_at=NOW + timedelta(minutes=10))


@pytest.fixture
async def service(
    storage: SqlStorage, clock: FakeClock, server: FeedServer, schedule: FakeSchedule
) -> AsyncIterator[BriefingService]:
    settings = Settings(security=SecuritySettings(allow_hosts=[f"127.0.0.1:{server.port}"]))
    parser = ParserPool(kind="thread")
    async with Fetcher(settings.http, settings.poll) as fetcher:
        prober = FeedProbe(
            fetcher=fetcher,
            parser=parser,
            url_guard=make_url_guard(settings.security.allow_hosts),
            clock=clock,
        )
        yield BriefingService(
            storage=storage,
            clock=clock,
            options=service_options(settings),
            watchlist=default_watchlist(),
            prober=prober,
            schedule_info=schedule,
            on_schedule_changed=schedule.on_changed,
        )
    parser.close()


@pytest.fixture
async def app(clock: FakeClock) -> AsyncIterator[App]:
    """The real composition: service, outbox and the real Scheduler (APScheduler)."""
    config = Config(
        settings=Settings(), cfg_dir=None, watchlist=default_watchlist(), feeds=[WIRE, OTHER]
    )
    built = build_app(
        config,
        clock=clock,
        sinks={"console": RecordingSink()},
        database_url="sqlite+aiosqlite:///:memory:",
    )
    async with built:
        await built.scheduler.start(poll_now=False)
        yield built
