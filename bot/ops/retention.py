"""The daily retention run of ``briefbot run`` (``storage.retention_days``; 0 = off).

The first run is a few minutes after start (not at start: a restart loop must not
prune over and over, and start-up has other work), then every 24 hours. Pruning goes
in small batches (:meth:`bot.storage.retention.RetentionMixin.prune`), so it never
holds up a command or a poll for long. A failure is logged in one line and tried again
the next day.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from typing import Protocol

from bot.core.clock import Clock
from bot.errors import BriefbotError
from bot.ops.logs import event
from bot.storage.retention import PRUNE_BATCH, PruneReport

log = logging.getLogger(__name__)

FIRST_RUN_DELAY = 300.0
EVERY = 24 * 3600.0


class Prunable(Protocol):
    async def prune(self, before: datetime, *, batch: int, pause: float) -> PruneReport: ...


class Retention:
    def __init__(
        self,
        storage: Prunable,
        clock: Clock,
        days: int,
        *,
        batch: int = PRUNE_BATCH,
        pause: float = 0.05,
    ) -> None:
        self.storage = storage
        self.clock = clock
        self.days = days
        self.batch = batch
        self.pause = pause

    async def run_once(self) -> PruneReport:
        """Prune now what is older than ``days``."""
        before = self.clock.now() - timedelta(days=self.days)
        report = await self.storage.prune(before, batch=self.batch, pause=self.pause)
        if report.total:
            event(
                "retention: pruned %d items and %d deliveries older than %d days",
                report.items, report.deliveries, self.days,
                event="retention", items=report.items, deliveries=report.deliveries,
                days=self.days,
            )  # fmt: skip
        return report

    async def run_forever(self, *, first: float = FIRST_RUN_DELAY, every: float = EVERY) -> None:
        """Until cancelled: prune ``first`` seconds from now, then every ``every``."""
        if self.days <= 0:
            return
        await asyncio.sleep(first)
        while True:
            try:
                await self.run_once()
            except (BriefbotError, OSError) as err:
                log.warning("retention: pruning failed, tried again tomorrow: %s", err)
            except Exception:
                log.exception("retention: pruning failed, tried again tomorrow")
            await asyncio.sleep(every)


__all__ = ["Prunable", "Retention"]
