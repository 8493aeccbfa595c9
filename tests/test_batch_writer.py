"""The poll cycle's batch writer (issue 9: "storage in large batches across feeds, one
transaction per batch with its matches, sightings and fetch records"): batches by size,
by time and on demand, each feed's record with its last items, and failures confined to
the feed that caused them. Real SQLite files; the storage edge fails on purpose."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.core.cycle import FeedRows, FetchSuccess, ItemRow
from bot.core.models import FeedSource, Item
from bot.core.ports import MatchedItem
from bot.errors import StorageError
from bot.feeds.dedupe import dedupe_keys
from bot.feeds.writer import BatchWriter
from bot.storage.sql import SqlStorage

T0 = datetime(2024, 3, 1, 6, 0, tzinfo=UTC)
LATER = T0 + timedelta(minutes=15)


class RecordingStorage(SqlStorage):
    """A real SQLite storage that records each ``store_batch`` (feed ids with their
    item counts, records) and raises ``errors[feed_id]`` for a batch holding that feed."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.batches: list[tuple[list[tuple[int, int]], int]] = []
        self.errors: dict[int, Exception] = {}

    async def store_batch(  # type: ignore[override]
        self,
        parts: Sequence[FeedRows],
        *,
        fetched_at: datetime,
        records: Sequence[FetchSuccess] = (),
    ) -> list[list[MatchedItem]]:
        self.batches.append(([(p.feed_id, len(p.rows)) for p in parts], len(records)))
        for p in parts:
            if p.feed_id in self.errors:
                raise self.errors[p.feed_id]
        return await super().store_batch(parts, fetched_at=fetched_at, records=records)


@pytest.fixture
async def storage(tmp_path: Path) -> AsyncIterator[RecordingStorage]:
    s = RecordingStorage(f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}")
    await s.open()
    await s.sync_config_feeds([FeedSource(f"https://f{n}.example/rss", f"F{n}") for n in range(4)])
    yield s
    await s.close()


async def feed_ids(storage: SqlStorage) -> list[int]:
    return [f.id for f in await storage.feed_states()]


def rows(feed: int, count: int) -> list[ItemRow]:
    out = []
    for i in range(count):
        it = Item(
            guid=f"f{feed}-{i}",
            title=f"Story {feed}-{i}",
            summary="",
            link=f"https://f{feed}.example/{i}",
            canonical_link=f"https://f{feed}.example/{i}",
            published=T0,
            feed_url=f"https://f{feed}.example/rss",
            source=f"F{feed}",
            lang="en",
        )
        out.append(ItemRow(it, dedupe_keys(it), it.title, "", ()))
    return out


def record(feed_id: int) -> FetchSuccess:
    return FetchSuccess(feed_id, T0, LATER, None, None, f"hash-{feed_id}")


async def test_batches_fill_across_feeds_and_each_record_goes_with_its_last_items(
    storage: RecordingStorage,
) -> None:
    a, b, c, d = await feed_ids(storage)
    writer = BatchWriter(storage, fetched_at=T0, batch_items=100, linger=60)
    parts_a = writer.add_rows(a, rows(0, 250), record(a))
    parts_b = writer.add_rows(b, rows(1, 30), record(b))
    writer.add_record(record(c))
    await writer.close()
    # a's 250 items fill two batches and half of a third, which b's 30 share; c's record
    # (nothing to store) goes with the last batch
    assert storage.batches == [([(a, 100)], 0), ([(a, 100)], 0), ([(a, 50), (b, 30)], 3)]
    assert [len(await p) for p in parts_a] == [100, 100, 50]
    [new_b] = [await p for p in parts_b]
    assert [m.stored.item.guid for m in new_b] == [f"f1-{i}" for i in range(30)]
    states = {f.id: f for f in await storage.feed_states()}
    assert [states[x].content_hash for x in (a, b, c, d)] == [
        f"hash-{a}",
        f"hash-{b}",
        f"hash-{c}",
        None,
    ]
    assert writer.batches == 3


async def test_a_batch_waits_at_most_the_linger(storage: RecordingStorage) -> None:
    a, *_ = await feed_ids(storage)
    writer = BatchWriter(storage, fetched_at=T0, batch_items=100, linger=0.05)
    [part] = writer.add_rows(a, rows(0, 3), record(a))
    # nobody flushes: the linger does
    assert len(await asyncio.wait_for(part, 10)) == 3
    assert storage.batches == [([(a, 3)], 1)]
    await writer.close()
    assert writer.batches == 1


async def test_one_feeds_bad_data_fails_that_feed_only(
    storage: RecordingStorage, caplog: pytest.LogCaptureFixture
) -> None:
    a, b, c, _ = await feed_ids(storage)
    storage.errors[b] = ValueError("feed b's unexpected data")
    writer = BatchWriter(storage, fetched_at=T0, batch_items=100, linger=60)
    parts_a = writer.add_rows(a, rows(0, 20), record(a))
    parts_b = writer.add_rows(b, rows(1, 150), record(b))  # 80 here, 70 in the next batch
    parts_c = writer.add_rows(c, rows(2, 10), record(c))
    with caplog.at_level(logging.WARNING, logger="bot.feeds.writer"):
        await writer.close()
    assert "storing each feed alone" in caplog.text
    assert len(await parts_a[0]) == 20
    with pytest.raises(ValueError, match="unexpected data"):
        await parts_b[0]
    assert parts_b[1].cancelled()  # b has failed: its later items are not stored
    assert len(await parts_c[0]) == 10
    stored = await storage.items_between(T0 - timedelta(days=1), T0 + timedelta(days=1))
    assert {s.feed_id for s in stored} == {a, c}
    states = {f.id: f for f in await storage.feed_states()}
    # b's validators are not recorded: it is fetched again next cycle
    assert [states[x].content_hash for x in (a, b, c)] == [f"hash-{a}", None, f"hash-{c}"]


async def test_a_failing_database_fails_every_feed_of_the_batch(
    storage: RecordingStorage, caplog: pytest.LogCaptureFixture
) -> None:
    a, b, c, _ = await feed_ids(storage)
    storage.errors[a] = StorageError("The database failed: database is locked")
    writer = BatchWriter(storage, fetched_at=T0, batch_items=100, linger=60)
    parts_a = writer.add_rows(a, rows(0, 20), record(a))
    parts_b = writer.add_rows(b, rows(1, 20), record(b))
    writer.add_record(record(c))
    with caplog.at_level(logging.ERROR, logger="bot.feeds.writer"):
        await writer.close()
    for part in (*parts_a, *parts_b):
        with pytest.raises(StorageError, match="locked"):
            await part
    # no retry feed by feed when the database itself fails: one attempt
    assert len(storage.batches) == 1
    assert "recording 1 successful fetches failed" in caplog.text
    assert await storage.count_items_since(T0 - timedelta(days=1)) == 0


def test_batch_sizes_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        BatchWriter(SqlStorage("sqlite+aiosqlite:///:memory:"), fetched_at=T0, batch_items=0)
