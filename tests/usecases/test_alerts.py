"""New items from the poller: a poll cycle cut short is finished at the next start."""

from __future__ import annotations

from datetime import timedelta

from bot.core.matching import compile_watchlist
from bot.core.models import Item
from bot.core.service import BriefingService
from bot.feeds.dedupe import keys_for_batch
from bot.storage.sql import SqlStorage
from bot.watchlist_files import default_watchlist
from usecases.env import (
    ADMIN,
    NOW,
    READER,
    WIRE,
    feed_id,
    seed,
    titles_in,
)


async def test_recover_interrupted_poll_matches_what_a_cancelled_cycle_stored(
    service: BriefingService, storage: SqlStorage
) -> None:
    """A poll cancelled at shutdown after storing items but before matching them (or
    before the channel hook ran): the next run's first cycle matches them."""
    fid = await feed_id(storage, WIRE.url)
    await service.dispatch(
        ADMIN, "track", {"kind": "topic", "name": "Cold weather", "aliases": "turns cold"}
    )
    # the last finished cycle: default matches stored, the feed's success recorded, but
    # the channel hook (own entries, alerts) was cut short
    await seed(storage, ["Weather turns cold"], ago=timedelta(hours=1))
    await storage.record_fetch_success(
        fid,
        at=NOW - timedelta(hours=1),
        next_poll_at=NOW,
        etag=None,
        last_modified=None,
        content_hash="x",
    )
    # the cut-short cycle: items stored, no matches, no success recorded
    cut = Item(
        guid="cut",
        title="Wang Yi meets Blinken",
        summary="",
        link="https://wire.example/cut",
        canonical_link="https://wire.example/cut",
        published=NOW - timedelta(minutes=5),
        feed_url=WIRE.url,
        source=WIRE.name,
    )
    await storage.insert_items(fid, keys_for_batch([cut]), fetched_at=NOW - timedelta(minutes=5))
    before = await service.dispatch(READER, "brief", {})
    assert before.digest is not None
    assert titles_in(before) == []
    checked = await service.recover_interrupted_poll(compile_watchlist(default_watchlist()))
    assert checked == 2  # the cut-short item, and the last finished cycle's item
    after = await service.dispatch(READER, "brief", {})
    assert sorted(titles_in(after)) == ["Wang Yi meets Blinken", "Weather turns cold"]
    again = await service.recover_interrupted_poll(compile_watchlist(default_watchlist()))
    assert again == 2  # idempotent
    assert sorted(titles_in(await service.dispatch(READER, "brief", {}))) == sorted(
        titles_in(after)
    )
    # an item of an older cycle (before the feed's last recorded poll) is left alone
    await storage.record_fetch_success(
        fid,
        at=NOW,
        next_poll_at=NOW + timedelta(minutes=15),
        etag=None,
        last_modified=None,
        content_hash="y",
    )
    assert await service.recover_interrupted_poll(compile_watchlist(default_watchlist())) == 0
