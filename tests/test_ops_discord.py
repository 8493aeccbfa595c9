"""The Discord adapter's operations side against the loopback fake Discord: unreachable
at start (404 from the API base, a 5xx) is one line per attempt and a retry with
backoff, never a traceback; the connection state and command latency reach the
Monitor (so /healthz and /metrics)."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import NOW
from fakediscord import FakeDiscord, faults

from bot.app import App, Config, build_app
from bot.config import SecuritySettings, Settings, StorageSettings
from bot.core.clock import FakeClock
from bot.core.models import FeedSource
from bot.ops.logs import setup_logging
from bot.ops.monitor import Monitor
from bot.storage.sql import SqlStorage
from bot.watchlist_files import default_watchlist


async def _until(what: str, check: Callable[[], bool], within: float = 10) -> None:
    for _ in range(int(within / 0.02)):
        if check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{what} did not happen within {within} s")


@pytest.fixture
async def app(tmp_path: Path, feed_site: Any) -> AsyncIterator[App]:
    settings = Settings(
        storage=StorageSettings(data_dir=str(tmp_path)),
        security=SecuritySettings(allow_hosts=[f"127.0.0.1:{feed_site.port}"]),
    )
    config = Config(
        settings=settings, cfg_dir=None, watchlist=default_watchlist(),
        feeds=[FeedSource("https://wire.example/rss", "Wire")],
    )  # fmt: skip
    app = build_app(config, storage=SqlStorage("sqlite+aiosqlite:///:memory:"),
                    clock=FakeClock(NOW))  # fmt: skip
    await app.open()
    try:
        yield app
    finally:
        await app.close()


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    out = io.StringIO()
    handler = setup_logging(0, "json", stream=out, force=True)
    assert handler is not None
    try:
        yield out
    finally:
        logging.getLogger().removeHandler(handler)


async def _stop(task: asyncio.Task[None], fake: FakeDiscord) -> None:
    fake.release_gateway()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.wait_for(task, timeout=10)


async def test_unreachable_discord_is_retried_then_connects(
    fake_discord: FakeDiscord, fast_shards: None, app: App, log_lines: io.StringIO
) -> None:
    from bot.adapters.discord.bot import start_discord

    fake = fake_discord
    fake.script(
        "GET", r"/users/@me",
        faults.error(404, 0, "404: Not Found"),
        faults.server_error(503),
    )  # fmt: skip
    monitor = Monitor(adapter_stale_seconds=0.01)
    monitor.expect_adapter("discord")
    task = asyncio.create_task(
        start_discord(app, fake.token, telemetry=monitor, retry_first=0.05, guild_ready_timeout=0.2)
    )
    try:
        await _until("connected", lambda: monitor.health().adapters.get("discord") is True)
        assert monitor.health().ok
        assert [r.status for r in fake.requests("GET", r"/users/@me")] == [404, 503, 200]
        assert fake.identify_log
    finally:
        await _stop(task, fake)
    lines = [json.loads(x) for x in log_lines.getvalue().splitlines()]
    retries = [x for x in lines if x.get("event") == "discord_unreachable"]
    assert [x["reason"].split()[:2] for x in retries] == [["HTTP", "404"], ["HTTP", "503"]]
    assert retries[0]["msg"].startswith(
        f"discord: cannot reach Discord at {fake.api_base} (HTTP 404"
    )
    assert retries[0]["level"] == "warning"
    assert retries[1]["retry_in"] > retries[0]["retry_in"]  # backoff (0.05 s, then 0.1 s)
    assert not any("exc" in x for x in lines), "a traceback was logged"
    connected = [x for x in lines if x.get("event") == "adapter" and x["connected"]]
    assert len(connected) == 1


async def test_connection_state_and_command_latency_reach_the_monitor(
    fake_discord: FakeDiscord, fast_shards: None, app: App
) -> None:
    from bot.adapters.discord.bot import start_discord

    fake = fake_discord
    monitor = Monitor(adapter_stale_seconds=0.01)
    monitor.expect_adapter("discord")
    task = asyncio.create_task(
        start_discord(app, fake.token, telemetry=monitor, retry_first=0.05, guild_ready_timeout=0.2)
    )
    try:
        await _until("connected", lambda: monitor.health().adapters.get("discord") is True)
        await fake.wait_for_request("PUT", rf"/applications/{fake.application_id}/commands")
        guild = fake.guild_list[0]
        channel = next(c for c in guild.text_channels() if c.name == "general")
        inter = await fake.send_interaction(
            "status", {}, guild_id=guild.id, channel_id=channel.id, user=fake.admin
        )
        await inter.wait_response()
        await _until(
            "the command timed",
            lambda: bool(monitor.registry.get_sample_value(
                "briefbot_command_seconds_count", {"command": "status"})),
        )  # fmt: skip

        # a gateway outage: disconnected (unhealthy once it lasts), then resumed
        fake.hold_gateway()
        fake.drop_gateway()
        await _until("disconnected", lambda: monitor.health().adapters["discord"] is False)
        await asyncio.sleep(0.05)
        health = monitor.health()
        assert not health.ok
        (reason,) = health.reasons
        assert reason.startswith("discord not connected for ")
        assert reason.endswith("reconnecting")
        fake.release_gateway()
        await _until("reconnected", lambda: monitor.health().adapters["discord"] is True)
        assert monitor.health().ok
        assert (
            monitor.registry.get_sample_value("briefbot_adapter_connected", {"platform": "discord"})
            == 1
        )
    finally:
        await _stop(task, fake)
