"""Issue 10, point 9 (and the digest.default_time of point 8), on real storage: /track
edits an entry the channel has, /search pages and finds an entry's aliases, a feed
under another URL form is followed already, feed names are inert."""

from __future__ import annotations

from datetime import timedelta

from feedserver import FeedServer, rss

from bot.core.ports import SearchHit
from bot.core.service import BriefingService
from bot.core.usecases.searching import merge_hits
from bot.storage.sql import SqlStorage
from usecases.env import ADMIN, READER, WIRE, seed

# -- /track of an entry the channel has: edit its aliases -------------------------------


async def test_track_again_adds_aliases_and_changes_the_mode(
    service: BriefingService, storage: SqlStorage
) -> None:
    channel = await service.channel(ADMIN)
    first = await service.dispatch(
        ADMIN, "track", {"kind": "actor", "name": "Li Qiang", "aliases": "Premier Li"}
    )
    assert not first.error, first.text
    await seed(storage, ["李强出席进博会开幕式"])
    edit = await service.dispatch(
        ADMIN, "track", {"kind": "actor", "name": "li qiang", "aliases": "李强, premier li"}
    )
    assert not edit.error, edit.text
    assert "Updated Li Qiang (li-qiang):" in edit.text
    assert "Added aliases: 李强." in edit.text  # "premier li" it has (any case)
    assert "Matches: Li Qiang, Premier Li, 李强." in edit.text
    assert "1 stored story" in edit.text  # re-matched with the new alias
    [rec] = await storage.channel_entries(channel.id)
    assert [a if isinstance(a, str) else a["text"] for a in rec.definition["aliases"]] == [
        "Li Qiang",
        "Premier Li",
        "李强",
    ]
    assert rec.mode == "digest"
    loud = await service.dispatch(
        ADMIN, "track", {"kind": "actor", "name": "Li Qiang", "mode": "instant"}
    )
    assert "Now posted at once and in the digest." in loud.text
    assert [r.mode for r in await storage.channel_entries(channel.id)] == ["instant"]
    # /track with aliases keeps the mode it has
    more = await service.dispatch(
        ADMIN, "track", {"kind": "actor", "name": "Li Qiang", "aliases": "Chinese premier"}
    )
    assert not more.error
    assert [r.mode for r in await storage.channel_entries(channel.id)] == ["instant"]


async def test_track_edit_bad_input_changes_nothing(
    service: BriefingService, storage: SqlStorage
) -> None:
    channel = await service.channel(ADMIN)
    await service.dispatch(ADMIN, "track", {"kind": "topic", "name": "Rare earths"})
    before = await storage.channel_entries(channel.id)
    for args, message in [
        ({"kind": "actor", "name": "Rare earths", "aliases": "REE"}, "tracked here as a topic"),
        ({"kind": "topic", "name": "Rare earths", "aliases": "x"}, "too short"),
        (
            {"kind": "topic", "name": "Rare earths", "aliases": "rare earths"},
            "already tracked here",
        ),
    ]:
        reply = await service.dispatch(ADMIN, "track", args)
        assert reply.error, args
        assert message in reply.text, reply.text
    assert await storage.channel_entries(channel.id) == before


# -- /search: aliases and pages ---------------------------------------------------------


async def test_search_for_an_entry_finds_its_other_aliases(
    service: BriefingService, storage: SqlStorage
) -> None:
    await seed(storage, ["Wang Yi meets Blinken", "王毅会见布林肯", "Markets calm"])
    reply = await service.dispatch(READER, "search", {"query": "Wang Yi"})
    assert not reply.error, reply.text
    assert "(and Wang Yi's aliases: " in reply.lines[0]
    assert "王毅" in reply.lines[0]
    # "Wang" alone names him only with context: it is not searched on its own
    assert ", Wang)" not in reply.lines[0]
    assert ", Wang," not in reply.lines[0]
    assert "2 best" in reply.lines[0]
    assert "Wang Yi meets Blinken" in reply.text
    assert "王毅会见布林肯" in reply.text
    # an alias names the entry too; a query that names no entry searches as typed
    cjk = await service.dispatch(READER, "search", {"query": "王毅"})
    assert "Wang Yi meets Blinken" in cjk.text
    blinken = await service.dispatch(READER, "search", {"query": "Blinken"})
    assert "布林肯" in blinken.lines[0]
    assert "2 best" in blinken.lines[0]
    plain = await service.dispatch(READER, "search", {"query": "markets"})
    assert "aliases" not in plain.lines[0]
    assert "1 best" in plain.lines[0]


async def test_search_pages(service: BriefingService, storage: SqlStorage) -> None:
    await seed(storage, [f"Export controls update number {n}" for n in range(23)])
    first = await service.dispatch(READER, "search", {"query": "export controls"})
    assert "10 best" in first.lines[0]
    assert first.lines[-1] == "More: the same /search with page:2"
    third = await service.dispatch(READER, "search", {"query": "export controls", "page": 3})
    assert "page 3: 3 more" in third.lines[0]
    assert third.lines[1].startswith("21. ")
    assert "More:" not in third.text
    beyond = await service.dispatch(READER, "search", {"query": "export controls", "page": 4})
    assert "No more stories match 'export controls' (page 4)." in beyond.text
    seen = [
        line.split(" — ")[0].split(". ", 1)[1]
        for p in (1, 2, 3)
        for line in (
            await service.dispatch(READER, "search", {"query": "export controls", "page": p})
        ).lines
        if line[:1].isdigit()
    ]
    assert len(seen) == len(set(seen)) == 23
    bad = await service.dispatch(READER, "search", {"query": "x", "page": 0})
    assert bad.error
    assert "page must be at least 1" in bad.text


def test_merge_hits_each_story_once_by_relative_score() -> None:
    from bot.core.models import Item, StoredItem
    from usecases.env import NOW

    def hit(i: int, rank: float) -> SearchHit:
        item = Item(
            guid=str(i),
            title=str(i),
            summary="",
            link="",
            canonical_link="",
            published=NOW - timedelta(hours=i),
            feed_url="u",
            source="s",
        )
        return SearchHit(StoredItem(i, 1, item, NOW), rank)

    merged = merge_hits([[hit(1, 10.0), hit(2, 5.0)], [hit(3, 2.0), hit(2, 2.0)], []])
    assert [h.stored.id for h in merged] == [1, 2, 3]


# -- feeds: one feed under several URL forms; names inert -------------------------------


NAMED = rss(
    [{"title": "Hello", "link": "https://wire.example/h", "guid": "h"}],
    title="@everyone see https://evil.example now",
)


async def test_a_feed_followed_under_another_url_form_is_refused(
    service: BriefingService, storage: SqlStorage, server: FeedServer
) -> None:
    url = server.feed("/rss.xml", NAMED)
    added = await service.dispatch(ADMIN, "feeds add", {"url": url})
    assert not added.error, added.text
    assert "@everyone" not in added.text
    assert "https://evil" not in added.text
    assert "@\u200beveryone" in added.text
    for other in (
        url + "?utm_source=newsletter",
        url.replace("/rss.xml", "/rss.xml/"),
        url + "#top",
    ):
        again = await service.dispatch(ADMIN, "feeds add", {"url": other})
        assert again.error, other
        assert f"This channel already follows {other} (as {url})" in again.text
    listed = await service.dispatch(READER, "feeds list", {})
    assert "@\u200beveryone see https\u200b://evil.example now" in listed.text
    # the same feed in http and https form
    channel = await service.channel(ADMIN)
    assert WIRE.url.startswith("https://")
    http = await service.dispatch(ADMIN, "feeds add", {"url": WIRE.url.replace("https", "http")})
    assert http.error
    assert "already follows" in http.text
    # removed by another form of its URL
    removed = await service.dispatch(ADMIN, "feeds remove", {"feed": url + "?utm_medium=x"})
    assert not removed.error, removed.text
    assert url not in {f.url for f in await storage.channel_feeds(channel.id)}


# -- /digest schedule without a time: digest.default_time --------------------------------


async def test_digest_schedule_without_a_time_uses_the_default_time(
    service: BriefingService, storage: SqlStorage
) -> None:
    reply = await service.dispatch(ADMIN, "digest schedule", {"tz": "Asia/Shanghai"})
    assert not reply.error, reply.text
    assert "Digest scheduled at 08:00 (Asia/Shanghai)" in reply.text
    channel = await service.channel(ADMIN)
    assert (await storage.channel_by_id(channel.id)).digest_time == "08:00"


def test_the_default_time_setting_reaches_the_service() -> None:
    from bot.app import service_options
    from bot.config import DigestSettings, Settings

    settings = Settings(digest=DigestSettings(default_time="7:15"))
    assert service_options(settings).default_time == "07:15"
