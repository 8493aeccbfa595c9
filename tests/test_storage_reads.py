"""Reads beside writes: on a SQLite file a chat command's read does not queue behind the
poller's write transaction (issue 9: "reads that do not queue behind writes"), reads
see only committed data, and the read connections cannot write."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import insert, text
from storage_support import T0

from bot.core.ports import GroupBy
from bot.errors import StorageError
from bot.storage.queries import channels
from bot.storage.sql import SqlStorage


@pytest.fixture
async def storage(tmp_path: Path) -> AsyncIterator[SqlStorage]:
    s = SqlStorage(f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}")
    await s.open()
    try:
        yield s
    finally:
        await s.close()


def _channel_row(external_id: str) -> dict[str, object]:
    return {
        "platform": "discord",
        "external_id": external_id,
        "timezone": "UTC",
        "group_by": GroupBy.ENTRY,
        "created_at": T0,
    }


async def test_a_read_does_not_wait_for_a_write_in_progress(storage: SqlStorage) -> None:
    await storage.get_channel("discord", "known", name="general")
    writing = asyncio.Event()
    release = asyncio.Event()

    async def long_write() -> None:
        async with storage._tx() as conn:
            await conn.execute(insert(channels).values(_channel_row("uncommitted")))
            writing.set()
            await release.wait()

    writer = asyncio.create_task(long_write())
    await writing.wait()
    try:
        # the write holds the process's write lock and SQLite's: reads go on anyway,
        # and see the last committed state only
        seen = await asyncio.wait_for(storage.all_channels(), 5)
        assert [c.external_id for c in seen] == ["known"]
        known = await asyncio.wait_for(storage.get_channel("discord", "known"), 5)
        assert known.name == "general"
        feeds = await asyncio.wait_for(storage.all_feeds(), 5)
        assert feeds == []
    finally:
        release.set()
        await writer
    # committed: now every read sees it
    assert [c.external_id for c in await storage.all_channels()] == ["known", "uncommitted"]


async def test_a_new_channel_waits_for_the_write_then_is_created(storage: SqlStorage) -> None:
    writing = asyncio.Event()
    release = asyncio.Event()

    async def long_write() -> None:
        async with storage._tx():
            writing.set()
            await release.wait()

    writer = asyncio.create_task(long_write())
    await writing.wait()
    creating = asyncio.create_task(storage.get_channel("discord", "new", name="general"))
    await asyncio.sleep(0.2)
    assert not creating.done()  # creating a channel is a write: it queues
    release.set()
    await writer
    created = await asyncio.wait_for(creating, 5)
    assert created.external_id == "new"
    # a renamed channel is a write too: the stored name follows
    renamed = await storage.get_channel("discord", "new", name="briefings")
    assert renamed.name == "briefings"
    assert (await storage.channel_by_id(created.id)).name == "briefings"


async def test_read_connections_cannot_write(storage: SqlStorage) -> None:
    with pytest.raises(StorageError, match="readonly"):
        async with storage._read() as conn:
            await conn.execute(text("DELETE FROM channels"))


async def test_in_memory_reads_share_the_one_connection() -> None:
    s = SqlStorage("sqlite+aiosqlite:///:memory:")
    await s.open()
    try:
        await s.get_channel("discord", "c1")
        # one database per process: reads go through the same connection as writes
        assert [c.external_id for c in await s.all_channels()] == ["c1"]
    finally:
        await s.close()
