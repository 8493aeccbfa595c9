"""The Slack test harness: the real Briefbot app (SqlStorage, the real service and outbox,
a FakeClock) with the real Bolt app served on loopback by :class:`SlackBot`, its Web API
client pointed at a :class:`FakeSlack` through ``SLACK_API_BASE``."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from factories import seed_app

from .server import FakeSlack
from .signing import SlackRequests

NOW = datetime(2023, 11, 15, 12, 0, tzinfo=UTC)
SIGNING_SECRET = "fake-signing-secret-0123456789"
SECRET_KEY = "a-long-test-passphrase-for-briefbot-secrets"


@dataclass
class SlackEnv:
    fake: FakeSlack
    app: Any  # bot.app.App
    bot: Any  # SlackBot
    clock: Any
    slack: SlackRequests
    tmp_path: Path

    async def settle(self, timeout: float = 10.0) -> None:  # noqa: ASYNC109
        """Wait for the work started after acknowledgements (answers via response_url)."""
        for _ in range(3):
            await asyncio.sleep(0.01)
            await self.bot.commands.drain(timeout)

    async def until(self, check: Any, what: str, timeout: float = 10.0) -> None:  # noqa: ASYNC109
        """Poll the async ``check()`` until it is true (work Bolt runs after acknowledging
        an event is not ours to wait for)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while not await check():
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"{what} did not happen within {timeout:g} s")
            await asyncio.sleep(0.02)
        await self.settle()

    async def command(self, text: str, **kw: Any) -> Any:
        answer = await self.slack.command(text, **kw)
        await self.settle()
        return answer

    def responses(self, answer: Any) -> list[dict[str, Any]]:
        """What the app sent: the acknowledgement's body (if any), then the response_url
        posts."""
        out = []
        if answer.text:
            out.append(answer.json)
        out.extend(self.fake.response_posts(answer.response_url))
        return out

    async def channel_record(self, channel: str = "C0GENERAL", team: str | None = None) -> Any:
        return await self.app.storage.get_channel(
            "slack",
            channel,
            guild_id=team or self.fake.team_id,
            name=self.fake.channels[channel].name,
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
        return await seed_app(
            self.app, titles, now=NOW, feed_url=feed_url, source=source, ago=ago, summary=summary
        )


def build(
    tmp_path: Path,
    *,
    storage: Any = None,
    clock: Any = None,
    managers: tuple[str, ...] = (),
    feeds_port: int | None = None,
) -> Any:
    from bot.app import Config, build_app
    from bot.config import SecuritySettings, Settings, SlackSettings, StorageSettings
    from bot.core.clock import FakeClock
    from bot.core.models import FeedSource
    from bot.storage.sql import SqlStorage
    from bot.watchlist_files import default_watchlist

    allow = [f"127.0.0.1:{feeds_port}"] if feeds_port else []
    settings = Settings(
        storage=StorageSettings(data_dir=str(tmp_path)),
        security=SecuritySettings(allow_hosts=allow),
        slack=SlackSettings(
            host="127.0.0.1", port=0, managers=list(managers), api_base="http://127.0.0.1:9/api/"
        ),
    )
    config = Config(
        settings=settings,
        cfg_dir=None,
        watchlist=default_watchlist(),
        feeds=[
            FeedSource("https://wire.example/rss", "Wire"),
            FeedSource("https://other.example/rss", "Other Times"),
        ],
    )
    return build_app(
        config,
        storage=storage or SqlStorage("sqlite+aiosqlite:///:memory:"),
        clock=clock or FakeClock(NOW),
    )


async def start_slack_env(
    fake: FakeSlack,
    tmp_path: Path,
    *,
    credentials: Any = None,
    storage: Any = None,
    clock: Any = None,
    managers: tuple[str, ...] = (),
    feeds_port: int | None = None,
    ack_within: float | None = None,
) -> SlackEnv:
    """Open the app and start the Slack adapter (HTTP mode on a free loopback port)."""
    from bot.adapters.slack.app import SlackBot, SlackCredentials

    app = build(tmp_path, storage=storage, clock=clock, managers=managers, feeds_port=feeds_port)
    await app.open()
    creds = credentials or SlackCredentials(signing_secret=SIGNING_SECRET, bot_token=fake.bot_token)
    bot = SlackBot(app, creds, ack_within=ack_within)
    try:
        await bot.start()
    except BaseException:
        await app.close()
        raise
    port = bot.bound_port
    url = f"http://127.0.0.1:{port}/slack/events"
    return SlackEnv(fake, app, bot, app.clock, SlackRequests(url, SIGNING_SECRET, fake), tmp_path)


async def stop_slack_env(env: SlackEnv, *, close_app: bool = True) -> None:
    with contextlib.suppress(Exception):
        await env.settle()
    await env.bot.stop()
    if close_app:
        await env.app.close()
