"""SqlStorage full-text search: ranking, filters, phrases, CJK, any user input (every
backend: see storage_support)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from storage_support import A_URL, B_URL, BACKENDS, DAY, T0, item, keys, open_storage, setup_feeds

from bot.errors import InputError
from bot.storage.sql import SqlStorage


@pytest.fixture(params=BACKENDS)
async def storage(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SqlStorage]:
    async with open_storage(request.param, tmp_path) as s:
        yield s


# -- search ----------------------------------------------------------------------------


async def search_ids(storage: SqlStorage, query: str, **kw: object) -> list[int]:
    since = kw.pop("since", None)
    return [h.stored.id for h in await storage.search(query, since=since, **kw)]  # type: ignore[arg-type]


async def test_search_ranks_and_filters(storage: SqlStorage) -> None:
    ids = await setup_feeds(storage)
    a = ids[A_URL]
    rows = [
        item(1, title="Markets rally", summary="Chip export sanctions were eased on Monday"),
        item(2, title="New sanctions on chip exports", summary="The sanctions target chips"),
        item(3, title="Weather", summary="Rain expected"),
        item(4, title="Sanctions debate", summary="", published=T0 - 10 * DAY),
    ]
    stored = await storage.insert_items(a, [(r, [r.guid]) for r in rows], fetched_at=T0)
    by_guid = {s.item.guid: s.id for s in stored}

    hits = await storage.search("sanctions", since=None)
    ranked = [h.stored.id for h in hits]
    # a title match outranks a summary-only match
    assert set(ranked[:2]) == {by_guid["urn:guid:2"], by_guid["urn:guid:4"]}
    assert ranked[2] == by_guid["urn:guid:1"]
    assert [h.rank for h in hits] == sorted((h.rank for h in hits), reverse=True)
    # all words required
    assert await search_ids(storage, "chip sanctions") == [
        by_guid["urn:guid:2"],
        by_guid["urn:guid:1"],
    ]
    assert await search_ids(storage, "weather sanctions") == []
    # since filters on published-else-fetched
    assert by_guid["urn:guid:4"] not in await search_ids(storage, "sanctions", since=T0 - DAY)
    assert await search_ids(storage, "sanctions", limit=1) == ranked[:1]
    # HTML in the feed text is not searchable, its text is
    html_item = item(
        9, title="<b>Summit</b> &amp; talks", summary="<a href='https://spam.test'>x</a>"
    )
    [h] = await storage.insert_items(a, [(html_item, ["h"])], fetched_at=T0)
    assert await search_ids(storage, "summit") == [h.id]
    assert await search_ids(storage, "href") == []
    assert await search_ids(storage, "spam") == []


async def test_search_tolerates_any_user_input(storage: SqlStorage) -> None:
    ids = await setup_feeds(storage)
    [s] = await storage.insert_items(
        ids[A_URL],
        [
            (
                item(
                    1,
                    title="Xi's visit: AND/OR questions",
                    summary='He said "never" - NEAR the border',
                ),
                ["1"],
            )
        ],
        fetched_at=T0,
    )
    for query in [
        '"unbalanced',
        "AND OR",
        "Xi's",
        "NEAR(",
        "title:xi",
        "xi*",
        "(xi",
        "x-i",
        "'; DROP TABLE items; --",
        "a\\b",
        "xi^",
        "%_ xi",
        "NOT xi",
        "xi -",
    ]:
        await storage.search(query, since=None)  # never raises
    assert await search_ids(storage, "Xi's") == [s.id]
    # words, not operators (PostgreSQL drops them as English stop words)
    assert await search_ids(storage, "AND OR") == ([s.id] if storage.dialect == "sqlite" else [])
    assert await search_ids(storage, "xi AND questions") == [s.id]
    assert await search_ids(storage, '"never') == [s.id]
    assert await search_ids(storage, "NEAR border") == [s.id]
    for empty in ["", "   ", "*", '"" -', "_"]:
        with pytest.raises(InputError):
            await storage.search(empty, since=None)
    with pytest.raises(InputError, match="too long"):
        await storage.search("word " * 100, since=None)


async def test_search_prefix_and_case(storage: SqlStorage) -> None:
    ids = await setup_feeds(storage)
    [s] = await storage.insert_items(
        ids[A_URL], [(item(1, title="Zelenskyy meets European leaders"), ["1"])], fetched_at=T0
    )
    if storage.dialect == "sqlite":  # prefix match on the last word (FTS5)
        assert await search_ids(storage, "zelen") == [s.id]
    assert await search_ids(storage, "ZELENSKYY") == [s.id]
    assert await search_ids(storage, "european leader") == [s.id]


async def test_search_cjk(storage: SqlStorage) -> None:
    ids = await setup_feeds(storage)
    stored = await storage.insert_items(
        ids[A_URL],
        [
            (item(1, title="习近平会见拜登", summary="中美元首在旧金山举行会晤"), ["1"]),
            (
                item(2, title="李强出席论坛", summary="国务院总理李强发表演讲，谈及习近平经济思想"),
                ["2"],
            ),
            (item(3, title="Tokyo: 岸田首相が訪米", summary=""), ["3"]),
            (item(4, title="100%_增长", summary=""), ["4"]),
        ],
        fetched_at=T0,
    )
    s1, s2, s3, s4 = (s.id for s in stored)
    assert await search_ids(storage, "习近平") == [s1, s2]  # title beats summary
    assert await search_ids(storage, "李强") == [s2]  # two characters
    assert await search_ids(storage, "拜登 旧金山") == [s1]
    assert await search_ids(storage, "习近平 论坛") == [s2]
    assert await search_ids(storage, "岸田") == [s3]
    assert await search_ids(storage, "tokyo 岸田") == [s3]
    assert await search_ids(storage, "普京") == []
    assert await search_ids(storage, "%_增") == [s4]  # LIKE wildcards are literal
    assert await search_ids(storage, "%增") == []
    assert await search_ids(storage, "习近平", since=T0 + DAY) == []


async def test_search_index_follows_updates_and_deletes(storage: SqlStorage) -> None:
    ids = await setup_feeds(storage)
    [s] = await storage.insert_items(
        ids[A_URL], [(item(1, title="Original headline"), ["1"])], fetched_at=T0
    )
    async with storage.engine.begin() as conn:
        await conn.execute(
            text("UPDATE items SET title_plain = 'Corrected headline' WHERE id = :id"), {"id": s.id}
        )
    assert await search_ids(storage, "corrected") == [s.id]
    assert await search_ids(storage, "original") == []
    async with storage.engine.begin() as conn:
        await conn.execute(text("DELETE FROM items WHERE id = :id"), {"id": s.id})
    assert await search_ids(storage, "headline") == []


async def test_search_quoted_words_are_a_phrase(storage: SqlStorage) -> None:
    ids = await setup_feeds(storage)
    rows = [
        item(1, title="Export controls on AI chips widened"),
        item(2, title="Controls on rice export eased", summary="Export of grain controls"),
        item(3, title="Chips", summary="The new export controls bite"),
        item(4, title="Xi's visit to Paris ends", summary="A state visit"),
    ]
    stored = await storage.insert_items(ids[A_URL], [(r, [r.guid]) for r in rows], fetched_at=T0)
    s1, s2, s3, s4 = (s.id for s in stored)
    assert set(await search_ids(storage, "export controls")) == {s1, s2, s3}
    assert await search_ids(storage, '"export controls"') == [s1, s3]  # title first
    assert await search_ids(storage, "\u201cexport controls\u201d") == [s1, s3]  # typographic
    assert await search_ids(storage, '"export controls" chips') == [s1, s3]
    assert await search_ids(storage, 'chips "export controls"') == [s1, s3]
    assert await search_ids(storage, '"controls export"') == []  # order matters
    assert await search_ids(storage, '"rice export" "export controls"') == []
    assert await search_ids(storage, '"rice export" grain') == [s2]
    assert await search_ids(storage, '"Xi\'s visit"') == [s4]
    # a quoted word is exact, not a prefix; an unpaired quote is an ordinary character
    assert await search_ids(storage, '"expor"') == []
    assert set(await search_ids(storage, '"export controls')) == {s1, s2, s3}
    with pytest.raises(InputError):
        await storage.search('"" "  "', since=None)


async def test_search_fetched_since_is_the_fetch_time(storage: SqlStorage) -> None:
    ids = await setup_feeds(storage)
    late = item(1, title="Summit communique", published=T0 - 10 * DAY)  # fetched at T0
    old = item(2, title="Summit preview")
    [s_late] = await storage.insert_items(ids[A_URL], [(late, keys(late))], fetched_at=T0)
    [s_old] = await storage.insert_items(ids[A_URL], [(old, keys(old))], fetched_at=T0 - 3 * DAY)
    assert await search_ids(storage, "summit", since=T0 - DAY) == []  # published basis
    hits = await storage.search("summit", since=None, fetched_since=T0 - DAY)
    assert [h.stored.id for h in hits] == [s_late.id]
    both = await storage.search("summit", since=None, fetched_since=T0 - 4 * DAY)
    assert {h.stored.id for h in both} == {s_late.id, s_old.id}


async def test_search_for_a_channel_filters_its_feeds_in_the_query(storage: SqlStorage) -> None:
    """The best ``limit`` hits of the channel's own feeds, however many better-ranked hits
    belong to feeds it does not follow."""
    ids = await setup_feeds(storage)
    ch = await storage.get_channel("discord", "only-b")
    await storage.remove_feed(ch.id, ids[A_URL])
    # a word in the title outranks it in the summary (on every backend)
    better = [item(n, title=f"Tariffs {n}") for n in range(1, 121)]
    await storage.insert_items(ids[A_URL], [(r, keys(r)) for r in better], fetched_at=T0)
    own = [
        item(n, title="Week in review", summary="Talks, votes and tariffs", feed_url=B_URL)
        for n in (201, 202)
    ]
    mine = await storage.insert_items(ids[B_URL], [(r, keys(r)) for r in own], fetched_at=T0)
    everyone = await storage.search("tariffs", since=None, limit=50)
    assert all(h.stored.feed_id == ids[A_URL] for h in everyone)  # B's hits rank last
    hits = await storage.search("tariffs", since=None, limit=10, channel_id=ch.id)
    assert {h.stored.id for h in hits} == {s.id for s in mine}
    # the other filters still apply, and a channel following both feeds gets both
    assert (
        await storage.search("tariffs", since=None, fetched_since=T0 + DAY, channel_id=ch.id) == []
    )
    both = await storage.get_channel("discord", "both")
    assert len(await storage.search("tariffs", since=None, limit=100, channel_id=both.id)) == 100
    # CJK (substring) search is filtered the same way
    cjk = item(300, title="关税上调", feed_url=B_URL)
    [s_cjk] = await storage.insert_items(ids[B_URL], [(cjk, keys(cjk))], fetched_at=T0)
    a_cjk = item(301, title="关税", feed_url=A_URL)
    await storage.insert_items(ids[A_URL], [(a_cjk, keys(a_cjk))], fetched_at=T0)
    assert await search_ids(storage, "关税", channel_id=ch.id) == [s_cjk.id]
