"""/track, /untrack, /watchlist and /test: what a channel tracks."""

from __future__ import annotations

from datetime import timedelta

from bot.core.replies import ChannelContext
from bot.core.service import BriefingService
from bot.storage.sql import SqlStorage
from usecases.env import (
    ADMIN,
    OTHER,
    READER,
    seed,
    titles_in,
)


async def test_track_rematches_recent_items_so_brief_shows_them(
    service: BriefingService, storage: SqlStorage
) -> None:
    await seed(storage, ["Premier Li Qiang opens trade fair"], ago=timedelta(days=2))
    await seed(storage, ["李强会见外宾"], feed=OTHER, ago=timedelta(days=3))
    await seed(storage, ["Li Qiang in 2019"], ago=timedelta(days=9))  # past the window
    before = await service.dispatch(ADMIN, "brief", {"hours": 24 * 10})
    assert before.digest is not None
    assert before.digest.is_empty
    reply = await service.dispatch(
        ADMIN,
        "track",
        {"kind": "actor", "name": "Li Qiang", "aliases": "Premier Li,李强", "mode": "instant"},
    )
    assert not reply.error, reply.text
    assert reply.ephemeral
    assert "Tracking Li Qiang (actor, id li-qiang)" in reply.text
    assert "2 stored stories from the last 7 days match" in reply.text
    brief = await service.dispatch(ADMIN, "brief", {"entry": "li-qiang", "hours": 24 * 10})
    assert sorted(titles_in(brief)) == ["Premier Li Qiang opens trade fair", "李强会见外宾"]
    channel = await service.channel(ADMIN)
    [rec] = await storage.channel_entries(channel.id)
    assert (rec.entry_id, rec.mode) == ("li-qiang", "instant")
    # the channel's watchlist shows it with its aliases, next to the defaults
    wl = (await service.dispatch(READER, "watchlist", {})).text
    assert "• Li Qiang (li-qiang) [this channel's, instant]" in wl
    assert "aliases: Li Qiang, Premier Li, 李强" in wl
    assert "• Wang Yi (wang-yi) [default]" in wl
    # another channel does not see it
    other = ChannelContext("console", "elsewhere", can_manage=True)
    brief = await service.dispatch(other, "brief", {"entry": "li-qiang"})
    assert brief.error


async def test_track_bad_input_leaves_state_unchanged(
    service: BriefingService, storage: SqlStorage
) -> None:
    channel = await service.channel(ADMIN)
    cases = [
        ({"kind": "person", "name": "Li Qiang"}, "kind must be one of"),
        ({"kind": "actor", "name": "the"}, "too common"),
        ({"kind": "actor", "name": "Li Qiang", "aliases": "x"}, "too short"),
        ({"kind": "actor", "name": "Li Qiang", "mode": "loud"}, "mode must be one of"),
        ({"kind": "topic", "name": "Wang Yi"}, "default actor entry"),
        ({"kind": "actor", "name": "Wang Yi"}, "already tracked here"),
        ({"kind": "actor"}, "needs name"),
    ]
    for args, message in cases:
        reply = await service.dispatch(ADMIN, "track", args)
        assert reply.error, args
        assert message in reply.text, (args, reply.text)
    assert await storage.channel_entries(channel.id) == []
    assert await storage.disabled_entries(channel.id) == set()
    # tracking the same name twice is refused the second time
    first = await service.dispatch(ADMIN, "track", {"kind": "topic", "name": "Rare earths"})
    assert not first.error
    again = await service.dispatch(ADMIN, "track", {"kind": "topic", "name": "rare earths"})
    assert again.error
    assert "already tracked here" in again.text
    assert [r.entry_id for r in await storage.channel_entries(channel.id)] == ["rare-earths"]


async def test_untrack_a_default_entry_then_bring_it_back(
    service: BriefingService, storage: SqlStorage
) -> None:
    await seed(storage, ["Wang Yi meets Blinken"])
    channel = await service.channel(ADMIN)
    reply = await service.dispatch(ADMIN, "untrack", {"entry": "Wang Yi"})
    assert "Stopped tracking the default entry Wang Yi" in reply.text
    assert await storage.disabled_entries(channel.id) == {"wang-yi"}
    brief = await service.dispatch(ADMIN, "brief", {})
    assert brief.digest is not None
    assert {w.entry_id for line in brief.digest.lines() for w in line.why} == {"antony-blinken"}
    assert (
        "Default entries turned off here: wang-yi"
        in (await service.dispatch(ADMIN, "watchlist", {})).text
    )
    missing = await service.dispatch(ADMIN, "untrack", {"entry": "wang-yi"})
    assert missing.error
    back = await service.dispatch(ADMIN, "track", {"kind": "actor", "name": "Wang Yi"})
    assert "Tracking Wang Yi (wang-yi) again" in back.text
    assert "1 stored story" in back.text
    assert await storage.disabled_entries(channel.id) == set()
    assert await storage.channel_entries(channel.id) == []


async def test_instant_mode_on_a_default_entry_makes_a_channel_copy(
    service: BriefingService, storage: SqlStorage
) -> None:
    channel = await service.channel(ADMIN)
    reply = await service.dispatch(
        ADMIN,
        "track",
        {"kind": "actor", "name": "Wang Yi", "aliases": "Mr. Wang Yi", "mode": "instant"},
    )
    assert not reply.error, reply.text
    assert "channel copy" in reply.text
    [rec] = await storage.channel_entries(channel.id)
    assert rec.entry_id == "wang-yi"
    assert rec.mode == "instant"
    assert "王毅" in rec.definition["aliases"]  # the default's aliases are kept
    assert "Mr. Wang Yi" in rec.definition["aliases"]
    undo = await service.dispatch(ADMIN, "untrack", {"entry": "wang-yi"})
    assert "the default entry is tracked again" in undo.text
    assert await storage.channel_entries(channel.id) == []
    assert await storage.disabled_entries(channel.id) == set()


async def test_test_text_explains_matches_and_near_misses(service: BriefingService) -> None:
    reply = await service.dispatch(READER, "test", {"text": "Wang Yi met Blinken; Hunter Biden"})
    assert not reply.error
    assert "✓ Wang Yi (wang-yi): matched 'Wang Yi'" in reply.text
    assert "✓ Antony Blinken (antony-blinken)" in reply.text
    assert "✗ Joe Biden (joe-biden): 'Biden' found but not counted" in reply.text
    nothing = await service.dispatch(READER, "test", {"text": "A quiet day"})
    assert "No entry of this channel's watchlist matches" in nothing.text


async def test_test_entry_previews_recent_matches(
    service: BriefingService, storage: SqlStorage
) -> None:
    await seed(storage, ["Biden hosts Xi", "Hunter Biden testifies", "Weather"])
    reply = await service.dispatch(READER, "test", {"entry": "joe-biden"})
    assert "3 stored items checked, 1 matched, 1 mentioned but rejected" in reply.text
    assert "✓ Biden hosts Xi — 'Biden' in the title" in reply.text
    assert "✗ Hunter Biden testifies — 'Biden'" in reply.text
    both = await service.dispatch(READER, "test", {"entry": "joe-biden", "text": "x"})
    assert both.error
    neither = await service.dispatch(READER, "test", {})
    assert neither.error
    assert "Give text:" in neither.text
