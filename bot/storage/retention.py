"""Pruning old rows (``storage.retention_days``), a small batch per transaction.

:func:`prune` deletes, older than a cutoff:

- items fetched before it (and published before it, when they have a date: an item
  whose publication date is recent is kept however long ago it was first fetched),
  with everything hanging off them: their matches, sightings, dedupe keys, the links
  from deliveries to them and their full-text search rows (SQLite's ``items_fts`` is
  kept in step by its delete trigger; PostgreSQL's index needs nothing);
- finished deliveries (``sent`` or ``failed``) created before it. Pending ones are
  never pruned: the outbox still owns them.

Each batch is one short transaction of at most ``batch`` items (or deliveries); between
two batches the storage lock is released and the task yields, so a chat command or a
poll waits at most for one batch, never for the whole pruning.

Forgetting an item also forgets its dedupe keys: should a feed still carry it after
the cutoff it is stored again, with its old publication date, which keeps it out of
"new" windows.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, delete, or_, select

from bot.core.ports import DeliveryStatus
from bot.storage.engine import StorageBase, as_utc
from bot.storage.queries import (
    deliveries,
    delivery_items,
    item_keys,
    item_sightings,
    items,
    matches,
)

#: rows per transaction
PRUNE_BATCH = 200


@dataclass(slots=True)
class PruneReport:
    items: int = 0
    deliveries: int = 0
    batches: int = 0

    @property
    def total(self) -> int:
        return self.items + self.deliveries


class RetentionMixin(StorageBase):
    """Pruning for :class:`~bot.storage.sql.SqlStorage` (``storage.retention_days``)."""

    async def prune(
        self, before: datetime, *, batch: int = PRUNE_BATCH, pause: float = 0.0
    ) -> PruneReport:
        """Delete what is older than ``before`` (aware), ``batch`` rows per
        transaction, sleeping ``pause`` seconds between transactions."""
        if batch < 1:
            raise ValueError("batch must be at least 1")
        before = as_utc(before)
        report = PruneReport()
        old_item = and_(
            items.c.fetched_at < before,
            or_(items.c.published_at.is_(None), items.c.published_at < before),
        )
        while True:
            async with self._tx() as conn:
                ids = list(
                    (await conn.execute(select(items.c.id).where(old_item)
                                        .order_by(items.c.id).limit(batch))).scalars()
                )  # fmt: skip
                if ids:
                    for child in (matches, item_sightings, item_keys, delivery_items):
                        await conn.execute(delete(child).where(child.c.item_id.in_(ids)))
                    await conn.execute(delete(items).where(items.c.id.in_(ids)))
            if not ids:
                break
            report.items += len(ids)
            report.batches += 1
            await asyncio.sleep(pause)
            if len(ids) < batch:
                break
        old_delivery = and_(
            deliveries.c.created_at < before, deliveries.c.status != DeliveryStatus.PENDING
        )
        while True:
            async with self._tx() as conn:
                ids = list(
                    (await conn.execute(select(deliveries.c.id).where(old_delivery)
                                        .order_by(deliveries.c.id).limit(batch))).scalars()
                )  # fmt: skip
                if ids:
                    await conn.execute(
                        delete(delivery_items).where(delivery_items.c.delivery_id.in_(ids))
                    )
                    await conn.execute(delete(deliveries).where(deliveries.c.id.in_(ids)))
            if not ids:
                break
            report.deliveries += len(ids)
            report.batches += 1
            await asyncio.sleep(pause)
            if len(ids) < batch:
                break
        return report


__all__ = ["PRUNE_BATCH", "PruneReport", "RetentionMixin"]
