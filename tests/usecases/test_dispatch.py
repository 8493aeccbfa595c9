"""One dispatcher: unknown commands, the manage permission, what readers may do."""

from __future__ import annotations

import pytest

from bot.core.models import FeedSource
from bot.core.opml import export_opml
from bot.core.service import BriefingService
from bot.storage.sql import SqlStorage
from usecases.env import (
    ADMIN,
    READER,
    FakeSchedule,
)


async def test_unknown_command_is_an_error_reply(service: BriefingService) -> None:
    reply = await service.dispatch(ADMIN, "frobnicate", {})
    assert reply.error
    assert "unknown command" in reply.text


@pytest.mark.parametrize(
    ("command", "args"),
    [
        ("track", {"kind": "actor", "name": "Li Qiang"}),
        ("untrack", {"entry": "wang-yi"}),
        ("digest schedule", {"time": "08:00"}),
        ("digest off", {}),
        ("feeds add", {"url": "https://example.com/feed"}),
        ("feeds remove", {"feed": "1"}),
        ("feeds import", {"file": export_opml([FeedSource("https://x.example/rss", "X")])}),
    ],
)
async def test_configuration_commands_need_the_manage_permission(
    service: BriefingService,
    storage: SqlStorage,
    schedule: FakeSchedule,
    command: str,
    args: dict[str, object],
) -> None:
    channel = await service.channel(ADMIN)
    await storage.set_schedule(channel.id, time="07:00", timezone="UTC", days=None)
    before_feeds = await storage.channel_feeds(channel.id)
    reply = await service.dispatch(READER, command, args)
    assert reply.error
    assert reply.ephemeral
    assert "Manage Server" in reply.text
    after = await storage.channel_by_id(channel.id)
    assert after.digest_time == "07:00"
    assert await storage.channel_entries(channel.id) == []
    assert await storage.disabled_entries(channel.id) == set()
    assert await storage.channel_feeds(channel.id) == before_feeds
    assert schedule.changed == []


async def test_readers_may_look(service: BriefingService) -> None:
    for command in ("brief", "watchlist", "status", "feeds list", "feeds export", "help"):
        reply = await service.dispatch(READER, command, {})
        assert not reply.error, (command, reply.text)
