"""/brief and /search: what is stored, visible to the channel."""

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
    OTHER,
    READER,
    WIRE,
    feed_id,
    seed,
    titles_in,
)


async def test_brief_shows_matched_stories_visible_to_the_channel(
    service: BriefingService, storage: SqlStorage
) -> None:
    await seed(storage, ["Wang Yi meets Blinken in Washington", "Local bakery wins prize"])
    await seed(storage, ["Putin visits Beijing"], ago=timedelta(hours=30))
    reply = await service.dispatch(ADMIN, "brief", {})
    assert not reply.error
    assert not reply.ephemeral
    assert reply.digest is not None
    assert reply.digest.kind == "brief"
    assert titles_in(reply) == ["Wang Yi meets Blinken in Washington"]  # 24 h by default
    longer = await service.dispatch(ADMIN, "brief", {"hours": 48})
    assert sorted(titles_in(longer)) == [
        "Putin visits Beijing",
        "Wang Yi meets Blinken in Washington",
    ]
    one = await service.dispatch(ADMIN, "brief", {"entry": "Vladimir Putin", "hours": 48})
    assert titles_in(one) == ["Putin visits Beijing"]
    assert one.digest is not None
    assert one.digest.title == "Brief: Vladimir Putin"


async def test_brief_bad_input(service: BriefingService) -> None:
    reply = await service.dispatch(ADMIN, "brief", {"entry": "putn"})
    assert reply.error
    assert reply.ephemeral
    assert "No watchlist entry 'putn'" in reply.text
    reply = await service.dispatch(ADMIN, "brief", {"hours": 0})
    assert reply.error
    assert "hours must be at least 1" in reply.text
    reply = await service.dispatch(ADMIN, "brief", {"colour": "red"})
    assert reply.error
    assert "has no option 'colour'" in reply.text


async def test_search_best_first_in_the_channels_feeds(
    service: BriefingService, storage: SqlStorage
) -> None:
    await seed(storage, ["Export controls on chips tightened", "Chips rally on earnings"])
    await seed(storage, ["Old export controls story"], ago=timedelta(days=5))
    reply = await service.dispatch(READER, "search", {"query": "export controls"})
    assert not reply.error
    assert not reply.ephemeral
    assert "2 best" in reply.lines[0]
    titles = [line for line in reply.lines if line[:2] in ("1.", "2.")]
    assert len(titles) == 2
    assert all("xport controls" in t for t in titles)
    recent = await service.dispatch(READER, "search", {"query": "export controls", "hours": 24})
    assert "1 best" in recent.lines[0]
    none = await service.dispatch(READER, "search", {"query": "zeppelin"})
    assert "No stored story matches 'zeppelin'" in none.text
    # a channel that removed the feed does not see its items
    await service.dispatch(ADMIN, "feeds remove", {"feed": "Wire"})
    hidden = await service.dispatch(READER, "search", {"query": "export controls"})
    assert "No stored story matches" in hidden.text


async def test_search_phrases_and_the_same_time_basis_as_brief(
    service: BriefingService, storage: SqlStorage
) -> None:
    await seed(storage, ["Export controls on chips tightened"], ago=timedelta(hours=1))
    await seed(storage, ["Controls on rice export eased"], ago=timedelta(hours=1))
    # fetched an hour ago, but published a week ago (a late feed): /brief goes by the
    # publication time, and so does /search hours:; plain /search still finds it
    fid = await feed_id(storage, WIRE.url)
    late = Item(
        guid="late",
        title="Export controls review published late",
        summary="",
        link="https://wire.example/late",
        canonical_link="https://wire.example/late",
        published=NOW - timedelta(days=7),
        feed_url=WIRE.url,
        source=WIRE.name,
    )
    await storage.insert_items(fid, keys_for_batch([late]), fetched_at=NOW - timedelta(hours=1))
    words = await service.dispatch(READER, "search", {"query": "export controls"})
    assert "3 best" in words.lines[0]
    phrase = await service.dispatch(READER, "search", {"query": '"export controls"'})
    assert "2 best" in phrase.lines[0], phrase.text
    assert "Controls on rice export" not in phrase.text
    recent = await service.dispatch(READER, "search", {"query": '"export controls"', "hours": 24})
    assert "1 best" in recent.lines[0], recent.text
    assert "published late" not in recent.text
    assert "published late" in phrase.text
    week = await service.dispatch(READER, "search", {"query": '"export controls"', "hours": 24 * 8})
    assert "2 best" in week.lines[0], week.text
    assert "published late" in week.text
    mixed = await service.dispatch(READER, "search", {"query": '"export controls" chips'})
    assert "1 best" in mixed.lines[0]


async def test_search_finds_the_channels_hits_behind_many_better_ones_elsewhere(
    service: BriefingService, storage: SqlStorage
) -> None:
    await service.dispatch(ADMIN, "feeds remove", {"feed": "Other Times"})
    # far more (and better ranked: short titles) hits in a feed the channel does not follow
    await seed(storage, [f"Export controls {n}" for n in range(60)], feed=OTHER)
    await seed(
        storage,
        [
            "A long look at chips, tariffs, and the export controls that came with them",
            "Markets, shipping and trade: what the new export controls mean for ports",
        ],
    )
    reply = await service.dispatch(READER, "search", {"query": "export controls"})
    assert "2 best" in reply.lines[0]
    assert not any("Export controls 1" in line for line in reply.lines)


SUMMIT = (
    "The two leaders agreed at the estate south of San Francisco to restore "
    "military-to-military communication and to keep talking about trade."
)


async def test_brief_for_one_entry_credits_the_same_outlets_as_the_full_brief(
    service: BriefingService, storage: SqlStorage
) -> None:
    await seed(
        storage,
        ["Biden and Xi Jinping hold summit in Woodside, agree to resume military talks"],
        ago=timedelta(hours=3),
        summary=SUMMIT,
    )
    # the same story from another outlet that names no tracked entry but Biden
    await seed(
        storage,
        ["Biden and China's president hold summit in Woodside, agree to resume military talks"],
        feed=OTHER,
        ago=timedelta(hours=2),
        summary=SUMMIT,
    )
    full = await service.dispatch(ADMIN, "brief", {})
    assert full.digest is not None
    (line,) = list(full.digest.lines())
    assert set(line.outlets) == {"Wire", "Other Times"}
    one = await service.dispatch(ADMIN, "brief", {"entry": "xi-jinping"})
    assert one.digest is not None
    (focused,) = list(one.digest.lines())
    assert focused.story_id == line.story_id
    assert focused.outlets == line.outlets
    assert one.digest.groups[0].entry_id == "xi-jinping"
    assert focused.why[0].entry_id == "xi-jinping"
    # an entry the story did not match gets nothing
    none = await service.dispatch(ADMIN, "brief", {"entry": "wang-yi"})
    assert none.digest is not None
    assert none.digest.is_empty


async def test_backlog_is_searchable_but_never_new(
    service: BriefingService, storage: SqlStorage
) -> None:
    """A feed's archive item (published days before it was fetched) is stored and found
    by /search, but /brief never lists it; the item published an hour before is news."""
    fid = await feed_id(storage, WIRE.url)
    fresh, old = (
        Item(
            guid=g,
            title=t,
            summary="",
            link=f"https://wire.example/{g}",
            canonical_link=f"https://wire.example/{g}",
            published=NOW - age,
            feed_url=WIRE.url,
            source=WIRE.name,
        )
        for g, t, age in (
            ("new", "Wang Yi meets Blinken in Washington", timedelta(hours=1)),
            ("old", "Wang Yi meets Kissinger in Beijing", timedelta(days=5)),
        )
    )
    stored = await storage.insert_items(fid, keys_for_batch([fresh, old]), fetched_at=NOW)
    matcher = compile_watchlist(default_watchlist())
    for s in stored:
        await storage.add_matches(s.id, matcher.match(s.item.title, s.item.summary))
    brief = await service.dispatch(ADMIN, "brief", {"hours": 720})
    assert titles_in(brief) == ["Wang Yi meets Blinken in Washington"]
    found = await service.dispatch(READER, "search", {"query": "Kissinger"})
    assert "1 best" in found.lines[0]
    assert "Wang Yi meets Kissinger in Beijing" in found.text
    assert "Fri 10 Nov 12:00 UTC" in found.text  # its publication time
    # /search hours: goes by publication time too
    recent = await service.dispatch(READER, "search", {"query": "Kissinger", "hours": 48})
    assert "No stored story matches" in recent.text
