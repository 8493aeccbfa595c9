"""SqlStorage channels: get-or-create, schedules, grouping, pause (every backend: see
storage_support)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from storage_support import BACKENDS, open_storage

from bot.errors import InputError, NotFoundError
from bot.storage.sql import SqlStorage


@pytest.fixture(params=BACKENDS)
async def storage(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SqlStorage]:
    async with open_storage(request.param, tmp_path) as s:
        yield s


# -- channels --------------------------------------------------------------------------


async def test_channels(storage: SqlStorage) -> None:
    ch = await storage.get_channel(
        "discord", "123", guild_id="9", name="news", default_tz="Asia/Shanghai"
    )
    assert (ch.platform, ch.external_id, ch.guild_id, ch.name) == ("discord", "123", "9", "news")
    assert (ch.timezone, ch.digest_time, ch.digest_days, ch.group_by) == (
        "Asia/Shanghai",
        None,
        None,
        "entry",
    )
    assert ch.last_digest_at is None
    assert ch.paused_reason is None
    same = await storage.get_channel("discord", "123", default_tz="UTC")
    assert same == ch
    renamed = await storage.get_channel("discord", "123", name="world-news")
    assert (renamed.id, renamed.name, renamed.guild_id) == (ch.id, "world-news", "9")
    slack = await storage.get_channel("slack", "123")
    assert slack.id != ch.id
    assert [c.id for c in await storage.all_channels()] == [ch.id, slack.id]
    assert [c.id for c in await storage.all_channels("slack")] == [slack.id]
    assert await storage.channel_by_id(ch.id) == renamed
    with pytest.raises(NotFoundError):
        await storage.channel_by_id(12345)

    rec = await storage.set_schedule(ch.id, time="08:30", timezone="Europe/Berlin", days="Mon-Fri")
    assert (rec.digest_time, rec.timezone, rec.digest_days) == ("08:30", "Europe/Berlin", "mon-fri")
    rec = await storage.set_schedule(ch.id, time="21:05", timezone=None, days=None)
    assert (rec.digest_time, rec.timezone, rec.digest_days) == ("21:05", "Europe/Berlin", None)
    for bad in ("8:30", "24:00", "12:60", "noon"):
        with pytest.raises(InputError, match="HH:MM"):
            await storage.set_schedule(ch.id, time=bad, timezone=None, days=None)
    with pytest.raises(InputError, match="Unknown timezone"):
        await storage.set_schedule(ch.id, time="09:00", timezone="Mars/Olympus", days=None)
    assert (await storage.channel_by_id(ch.id)).digest_time == "21:05"
    rec = await storage.set_schedule(ch.id, time=None, timezone=None, days="mon")
    assert (rec.digest_time, rec.digest_days, rec.timezone) == (None, None, "Europe/Berlin")

    await storage.set_paused(ch.id, "Missing Access (403)")
    assert (await storage.channel_by_id(ch.id)).paused_reason == "Missing Access (403)"
    await storage.set_paused(ch.id, None)
    assert (await storage.channel_by_id(ch.id)).paused_reason is None
    await storage.set_last_digest_at(
        ch.id, datetime(2024, 3, 1, 9, tzinfo=timezone(timedelta(hours=1)))
    )
    assert (await storage.channel_by_id(ch.id)).last_digest_at == datetime(
        2024, 3, 1, 8, tzinfo=UTC
    )
    assert (await storage.set_group_by(ch.id, "story")).group_by == "story"
    with pytest.raises(InputError):
        await storage.set_group_by(ch.id, "mood")
    with pytest.raises(NotFoundError):
        await storage.set_paused(999, "x")


async def test_concurrent_get_channel_creates_one_row(storage: SqlStorage) -> None:
    recs = await asyncio.gather(*(storage.get_channel("discord", "7") for _ in range(5)))
    assert len({r.id for r in recs}) == 1
    assert len(await storage.all_channels()) == 1
