"""Shared test plugins and the Discord test harness.

``fake_discord`` / ``run_client`` come from the loopback fake Discord
(``fakediscord.pytest_plugin``). ``discord_env`` runs the real Briefbot Discord adapter
(``DiscordBot.run``: login through ``DISCORD_API_BASE``, command sync, every shard
connected) on the real app (SqlStorage on in-memory SQLite, the real service and
outbox, a FakeClock) against that fake, with a loopback feed server for feeds.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import discord
import pytest
import yarl
from factories import seed_app

pytest_plugins = ["fakediscord.pytest_plugin"]

NOW = datetime(2023, 11, 15, 12, 0, tzinfo=UTC)


# replaces discord.py's AutoShardedClient.before_identify_hook, which passes initial by keyword
async def _no_identify_pause(self: Any, shard_id: int | None, *, initial: bool = False) -> None:
    return None


@dataclass
class DiscordEnv:
    fake: Any  # FakeDiscord
    app: Any  # bot.app.App
    clock: Any  # FakeClock
    feeds: Any  # FeedServer
    bot: Any  # DiscordBot
    task: asyncio.Task[None]
    tmp_path: Path

    @property
    def client(self) -> discord.AutoShardedClient:
        return self.bot.client  # type: ignore[no-any-return]

    def channel(self, guild: int = 0, name: str = "general") -> Any:
        g = self.fake.guild_list[guild]
        return next(c for c in g.text_channels() if c.name == name)

    async def command(
        self,
        name: str,
        options: dict[str, Any] | None = None,
        *,
        user: Any = None,
        guild: int = 0,
        channel: str = "general",
    ) -> Any:
        """Run a slash command as ``user`` (default: the admin) and wait for its
        callback; returns the FakeInteraction."""
        g = self.fake.guild_list[guild]
        inter = await self.fake.send_interaction(
            name,
            options or {},
            guild_id=g.id,
            channel_id=self.channel(guild, channel).id,
            user=user or self.fake.admin,
        )
        await inter.wait_response()
        await self.settle()
        return inter

    async def settle(self, timeout: float = 10.0) -> None:  # noqa: ASYNC109
        """Wait until discord.py finished handling every interaction delivered so far
        (its command tree runs each in a task named ``CommandTree-invoker``)."""
        tasks = [
            t
            for t in asyncio.all_tasks()
            if t.get_name() == "CommandTree-invoker" and t is not asyncio.current_task()
        ]
        if tasks:
            await asyncio.wait(tasks, timeout=timeout)

    async def channel_record(self, guild: int = 0, name: str = "general") -> Any:
        ch = self.channel(guild, name)
        return await self.app.storage.get_channel(
            "discord", str(ch.id), guild_id=str(ch.guild_id), name=name
        )

    async def seed(
        self,
        titles: list[str],
        *,
        feed_url: str = "https://wire.example/rss",
        source: str = "Wire",
        ago: timedelta = timedelta(hours=2),
        summary: str = "",
    ) -> list[Any]:
        """Store items as the poller would (fetched ``ago`` before NOW), with the
        default watchlist's matches."""
        return await seed_app(
            self.app, titles, now=NOW, feed_url=feed_url, source=source, ago=ago, summary=summary
        )


async def start_discord_env(
    fake: Any,
    tmp_path: Path,
    feeds: Any,
    *,
    storage: Any = None,
    clock: Any = None,
    sources: list[Any] | None = None,
    **discord_settings: Any,
) -> DiscordEnv:
    """Build the app and run the Discord adapter against ``fake`` until READY."""
    from bot.adapters.discord.bot import DiscordBot
    from bot.app import Config, build_app
    from bot.config import DiscordSettings, SecuritySettings, Settings, StorageSettings
    from bot.core.clock import FakeClock
    from bot.core.models import FeedSource
    from bot.storage.sql import SqlStorage
    from bot.watchlist_files import default_watchlist

    settings = Settings(
        storage=StorageSettings(data_dir=str(tmp_path)),
        security=SecuritySettings(allow_hosts=[f"127.0.0.1:{feeds.port}"]),
        discord=DiscordSettings(**discord_settings),
    )
    config = Config(
        settings=settings,
        cfg_dir=None,
        watchlist=default_watchlist(),
        feeds=sources
        if sources is not None
        else [
            FeedSource("https://wire.example/rss", "Wire"),
            FeedSource("https://other.example/rss", "Other Times"),
        ],
    )
    clock = clock or FakeClock(NOW)
    app = build_app(
        config, storage=storage or SqlStorage("sqlite+aiosqlite:///:memory:"), clock=clock
    )
    await app.open()
    bot = DiscordBot(app, guild_ready_timeout=0.2)
    task = asyncio.create_task(bot.run(fake.token), name="discord-bot")
    ready = asyncio.create_task(bot.client.wait_until_ready())
    done, _ = await asyncio.wait({ready, task}, timeout=10, return_when=asyncio.FIRST_COMPLETED)
    if ready not in done:
        ready.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await ready
        if task in done:
            task.result()
        raise AssertionError("the Discord bot did not get ready")
    return DiscordEnv(fake, app, clock, feeds, bot, task, tmp_path)


async def stop_discord_env(env: DiscordEnv, *, close_app: bool = True) -> None:
    # a gateway outage a (failed) test left on would keep a reconnecting shard waiting
    # for HELLO, and discord.py's close with it
    env.fake.release_gateway()
    await env.settle()
    env.task.cancel()
    _, stuck = await asyncio.wait({env.task}, timeout=10)
    if stuck:  # never hang the suite: cancel again (it lands elsewhere), then fail
        env.task.cancel()
        await asyncio.wait({env.task}, timeout=10)
    with contextlib.suppress(asyncio.CancelledError):
        await env.task
    assert not stuck, "the Discord bot did not stop within 10 s of being cancelled"
    assert env.client.is_closed()
    if close_app:
        await env.app.close()


#: where discord.py's defaults point during the adapter tests: nothing listens there
DEAD_API = "http://127.0.0.1:9/api/v10"
DEAD_GATEWAY = "ws://127.0.0.1:9/gateway"


@pytest.fixture(scope="session")
def _data_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("xdg-data")


@pytest.fixture(autouse=True)
def _isolated_data_home(_data_home: Path) -> Iterator[None]:
    """The default data directory (check-config creates it and opens the database in
    it) is a temporary one, never the real per-user directory. (Its own MonkeyPatch:
    the shared ``monkeypatch`` fixture set up first would be undone last, after
    ``fake_discord`` restored discord.py's defaults.)"""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_DATA_HOME", str(_data_home))
        yield


# fake_discord before monkeypatch: set up first, torn down last, so discord.py's defaults
# end as they were even when a test names only this fixture (usefixtures)
@pytest.fixture
def fast_shards(fake_discord: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """discord.py pauses 5 s before each shard's IDENTIFY (max_concurrency 1 on Discord):
    not against the fake. And the adapter must find the fake through DISCORD_API_BASE
    alone: the ``fake_discord`` fixture pointed discord.py's own defaults (``Route.BASE``,
    the default gateway) at the fake; here they point at a dead address again, so a test
    passes only if the adapter's API-base handling (REST and gateway) really works."""
    from discord.gateway import DiscordWebSocket
    from discord.http import Route

    monkeypatch.setattr(discord.AutoShardedClient, "before_identify_hook", _no_identify_pause)
    monkeypatch.setattr(Route, "BASE", DEAD_API)
    monkeypatch.setattr(DiscordWebSocket, "DEFAULT_GATEWAY", yarl.URL(DEAD_GATEWAY))
    monkeypatch.setenv("DISCORD_API_BASE", fake_discord.api_base)


@pytest.fixture
async def feed_site() -> AsyncIterator[Any]:
    from feedserver import FeedServer

    async with FeedServer() as server:
        yield server


@pytest.fixture
async def discord_env(
    fake_discord: Any,
    fast_shards: None,
    tmp_path: Path,
    feed_site: Any,
) -> AsyncIterator[DiscordEnv]:
    env = await start_discord_env(fake_discord, tmp_path, feed_site)
    try:
        yield env
    finally:
        await stop_discord_env(env)
