"""A poll cycle's writes, in batches across feeds (issue 9): the feeds' new items, their
matches and sightings, and the feeds' fetch records go to storage in one transaction per
batch (:meth:`~bot.core.cycle.CycleStore.store_batch`), not one per feed.

Feeds queue their rows in the cycle's store order (the poller's ordered turns); a batch
is written when it holds ``batch_items`` items or ``batch_records`` fetch records, when
its first entry has waited ``linger`` seconds, or when :meth:`BatchWriter.flush` is
called (the poller does when every feed has queued its rows). One batch is written at a
time, in order. A feed's rows are split to fill batches, so no transaction holds more
than ``batch_items`` items: a chat command that writes waits for at most one batch
(reads do not wait at all: see :mod:`bot.storage.engine`). A feed's fetch record goes
with its last rows, so its validators are recorded only once its items are.

Each queued part gets a future: its new items once committed, or the error. When a
batch of several feeds fails for a reason other than the database failing (a bug, one
feed's unexpected data), each feed's part is written again alone, so one feed's problem
fails that feed only; when the database fails (:class:`~bot.errors.StorageError`:
locked, disk full), every feed of the batch fails with it. The later parts of a feed
that failed are dropped (their futures cancelled).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from bot.core.cycle import CycleStore, FeedRows, FetchSuccess, ItemRow
from bot.core.ports import MatchedItem
from bot.errors import StorageError

log = logging.getLogger(__name__)

#: New items are stored this many at a time, across feeds (one transaction with their
#: keys, sightings, matches and the fetch records of the feeds whose last rows they are).
STORE_BATCH = 500
#: Fetch records (of feeds with nothing to store) are written at least this many at a time.
FETCH_RECORD_BATCH = 250
#: A queued entry waits at most this long for its batch to fill (seconds).
LINGER = 0.25

Committed = asyncio.Future[list[MatchedItem]]


@dataclass(slots=True)
class _Entry:
    part: FeedRows
    done: Committed
    #: the feed's fetch record, written with its last part
    record: FetchSuccess | None


class BatchWriter:
    """One poll cycle's writes (``fetched_at``: the cycle's time)."""

    def __init__(
        self,
        storage: CycleStore,
        *,
        fetched_at: datetime,
        batch_items: int = STORE_BATCH,
        batch_records: int = FETCH_RECORD_BATCH,
        linger: float = LINGER,
    ) -> None:
        if batch_items < 1 or batch_records < 1:
            raise ValueError("batch sizes must be positive")
        self.storage = storage
        self.fetched_at = fetched_at
        self.batch_items = batch_items
        self.batch_records = batch_records
        self.linger = linger
        self._entries: list[_Entry] = []
        self._records: list[FetchSuccess] = []
        self._items = 0
        self._timer: asyncio.TimerHandle | None = None
        self._writes: list[asyncio.Task[None]] = []
        #: feeds a batch failed for: their later parts are dropped
        self._failed: set[int] = set()
        #: how many batches were written (for the log and the tests)
        self.batches = 0

    def add_rows(
        self, feed_id: int, rows: Sequence[ItemRow], record: FetchSuccess | None
    ) -> list[Committed]:
        """Queue a feed's rows (in the cycle's store order) and its fetch record: one
        future per part the rows were split into, in order."""
        loop = asyncio.get_running_loop()
        parts: list[Committed] = []
        start = 0
        while start < len(rows):
            room = self.batch_items - self._items
            chunk = rows[start : start + room]
            start += len(chunk)
            done: Committed = loop.create_future()
            last = start >= len(rows)
            self._entries.append(_Entry(FeedRows(feed_id, chunk), done, record if last else None))
            self._items += len(chunk)
            parts.append(done)
            if self._items >= self.batch_items:
                self.flush()
        if not rows and record is not None:
            self._records.append(record)
        if len(self._records) >= self.batch_records:
            self.flush()
        self._arm()
        return parts

    def add_record(self, record: FetchSuccess) -> None:
        """Queue the fetch record of a feed with nothing to store."""
        self.add_rows(record.feed_id, (), record)

    def flush(self) -> None:
        """Start writing what is queued (after the batches before it)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._entries and not self._records:
            return
        entries, self._entries = self._entries, []
        records, self._records = self._records, []
        self._items = 0
        previous = self._writes[-1] if self._writes else None
        self._writes.append(asyncio.create_task(self._write(previous, entries, records)))

    async def close(self) -> None:
        """Write what is queued and wait for every write."""
        self.flush()
        writes, self._writes = self._writes, []
        await asyncio.gather(*writes, return_exceptions=True)

    def _arm(self) -> None:
        if self._timer is None and (self._entries or self._records):
            self._timer = asyncio.get_running_loop().call_later(self.linger, self.flush)

    async def _write(
        self,
        previous: asyncio.Task[None] | None,
        entries: list[_Entry],
        records: list[FetchSuccess],
    ) -> None:
        """Write a batch: ``entries`` (parts, each with its feed's record if it is the
        feed's last) and ``records`` (the fetch records of feeds with nothing to store)."""
        try:
            if previous is not None:
                await asyncio.wait([previous])
            live = []
            for e in entries:
                if e.part.feed_id in self._failed:
                    e.done.cancel()  # an earlier part of the feed failed: so has the feed
                else:
                    live.append(e)
            self.batches += 1
            await self._store(live, records)
        except asyncio.CancelledError:
            for e in entries:
                e.done.cancel()
            raise
        except BaseException as err:  # the process is going down: tell the feeds
            for e in entries:
                if not e.done.done():
                    e.done.set_exception(err)
            raise

    async def _store(self, live: list[_Entry], records: list[FetchSuccess]) -> None:
        attached = [e.record for e in live if e.record is not None]
        try:
            out = await self.storage.store_batch(
                [e.part for e in live], fetched_at=self.fetched_at, records=records + attached
            )
        except Exception as err:
            if len(live) <= 1 or isinstance(err, StorageError):
                self._fail(live, records, err)
                return
            log.warning(
                "storing a batch of %d feeds failed (%s): storing each feed alone",
                len({e.part.feed_id for e in live}),
                err,
            )
            await self._one_by_one(live, records)
            return
        for e, new in zip(live, out, strict=True):
            e.done.set_result(new)

    async def _one_by_one(self, live: list[_Entry], records: list[FetchSuccess]) -> None:
        for e in live:
            if e.part.feed_id in self._failed:
                e.done.cancel()
                continue
            own = [e.record] if e.record is not None else []
            try:
                [new] = await self.storage.store_batch(
                    [e.part], fetched_at=self.fetched_at, records=own
                )
            except Exception as err:
                self._fail([e], [], err)
            else:
                e.done.set_result(new)
        if records:
            try:
                await self.storage.store_batch([], fetched_at=self.fetched_at, records=records)
            except Exception as err:
                self._fail([], records, err)

    def _fail(self, live: list[_Entry], records: list[FetchSuccess], err: Exception) -> None:
        """``live``'s feeds failed with ``err``; so did writing ``records``."""
        for e in live:
            self._failed.add(e.part.feed_id)
            e.done.set_exception(err)
        if records:
            # the fetch records of feeds with nothing new: their items are stored; they
            # are fetched again next cycle (without validators), and their items are known
            log.error("recording %d successful fetches failed: %s", len(records), err)


__all__ = ["FETCH_RECORD_BATCH", "LINGER", "STORE_BATCH", "BatchWriter"]
