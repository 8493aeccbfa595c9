from __future__ import annotations

import random
from datetime import timedelta

import pytest
from factories import T0, mi

from bot.core.models import EntryKind, Field, Match
from bot.core.ranking import rank
from bot.core.stories import cluster, link_key


def groups(stories):
    return sorted(sorted(m.stored.id for m in s.items) for s in stories)


# -- same story, several outlets ---------------------------------------------------------

XI_TRIP = [
    mi(
        3,
        "China's Xi to visit San Francisco for APEC summit, meet Biden",
        summary="Chinese President Xi Jinping will travel to San Francisco next week for the "
        "APEC summit and a meeting with U.S. President Joe Biden, Beijing said on Friday.",
        source="Reuters",
        at=timedelta(hours=1),
    ),
    mi(
        1,
        "Xi Jinping to travel to US for Biden summit and Apec",
        summary="Xi will attend the Asia-Pacific Economic Cooperation leaders' meeting in San "
        "Francisco and hold talks with Joe Biden, the foreign ministry said.",
        source="SCMP",
        at=timedelta(hours=2),
    ),
    mi(
        7,
        "Biden and Xi will meet in California next week",
        summary="President Joe Biden and Chinese leader Xi Jinping will meet in the San "
        "Francisco area on Wednesday, the White House said.",
        source="AP",
        at=timedelta(hours=3),
    ),
]


def test_same_story_from_different_outlets_is_one_story():
    noise = mi(20, "Taiwan reports Chinese warplanes near island", source="Reuters")
    stories = cluster([*XI_TRIP, noise])
    assert groups(stories) == [[1, 3, 7], [20]]
    story = next(s for s in stories if len(s.items) == 3)
    assert story.id == 1  # the smallest item id
    assert story.outlets == ("Reuters", "SCMP", "AP")  # by first publication
    assert story.first == T0 + timedelta(hours=1)
    assert story.last == T0 + timedelta(hours=3)
    assert story.headline.stored.id == 3  # earliest, no entry favours another
    assert story.link == "https://reuters.example/3"


def test_tracking_params_in_links_join_the_same_article():
    a = mi(
        1,
        "Exclusive: Chip curbs to widen",
        source="Reuters",
        link="https://www.reuters.com/tech/chips-2023-11-14/?utm_source=rss&utm_medium=feed",
    )
    b = mi(
        2,
        "US set to tighten export rules on AI semiconductors",  # nothing in common
        source="Reuters World",
        link="http://reuters.com/tech/chips-2023-11-14#comments",
    )
    c = mi(3, "Unrelated: rain in Shanghai", source="Reuters", link="https://reuters.com/x/rain")
    assert groups(cluster([a, b, c])) == [[1, 2], [3]]


def test_chinese_outlet_joined_by_shared_link():
    reuters = mi(
        1,
        "Blinken meets Wang Yi in Washington",
        summary="Secretary of State Antony Blinken met Chinese Foreign Minister Wang Yi.",
        source="Reuters",
        link="https://www.reuters.com/world/blinken-wang-yi-2023-10-27/",
    )
    # cites the Reuters article in its summary
    cankao = mi(
        2,
        "外媒：王毅与布林肯会谈",
        summary='据<a href="https://reuters.com/world/blinken-wang-yi-2023-10-27?utm_source=weibo">'
        "路透社</a>报道，王毅在华盛顿与布林肯会谈。",
        source="参考消息",
        link="https://cankao.example/2",
    )
    # an aggregator entry whose canonical link is the Reuters article
    aggregator = mi(
        3,
        "王毅会见布林肯",
        source="聚合新闻",
        link="https://agg.example/r?id=9",
        canonical="https://reuters.com/world/blinken-wang-yi-2023-10-27",
    )
    other = mi(4, "台湾海峡局势", summary="国防部发布消息。", source="新华社")
    assert groups(cluster([reuters, cankao, aggregator, other])) == [[1, 2, 3], [4]]


def test_chinese_items_cluster_by_text_but_look_alikes_stay_apart():
    a = mi(
        1, "王毅会见美国国务卿布林肯", summary="外交部长王毅在华盛顿会见布林肯。", source="新华社"
    )
    b = mi(
        2,
        "王毅会见美国国务卿布林肯（图）",
        summary="外交部长王毅在华盛顿会见美国国务卿布林肯。",
        source="人民网",
    )
    c = mi(3, "国务院常务会议研究经济工作", summary="李强主持召开国务院常务会议。", source="新华社")
    d = mi(4, "李强会见布林肯", summary="国务院总理李强在北京会见美国国务卿布林肯。", source="CGTN")
    assert groups(cluster([a, b, c, d])) == [[1, 2], [3], [4]]


def test_boilerplate_links_do_not_join_stories():
    footer = ' <a href="https://newsletters.example/signup?list=daily">Sign up</a>'
    items = [
        mi(i, title, summary=f"{summary}{footer}", source="Daily")
        for i, (title, summary) in enumerate(
            [
                ("Rain floods Shanghai streets", "Heavy rain hit the city."),
                ("Chip curbs widen", "New export rules were published."),
                ("Panda born at Chengdu base", "The cub is healthy."),
            ],
            start=1,
        )
    ]
    assert groups(cluster(items)) == [[1], [2], [3]]
    # two outlets citing the same outside page (not an item here) are not joined by it
    page = ' <a href="https://www.mfa.example/eng/statements/">MFA</a>'
    a = mi(4, "Ministry condemns drills", summary=f"Statement.{page}", source="Reuters")
    b = mi(5, "Beijing welcomes trade data", summary=f"Remarks.{page}", source="AP")
    assert groups(cluster([a, b])) == [[4], [5]]


def test_link_key_normalises():
    assert link_key("https://www.Example.com/a/b/?utm_source=x&id=3&fbclid=1#frag") == (
        "example.com/a/b?id=3"
    )
    assert link_key("http://example.com/a/b?id=3") == "example.com/a/b?id=3"
    assert link_key("https://example.com/") is None  # a home page
    assert link_key("javascript:alert(1)") is None
    assert link_key("https://example.com:8443/x") == "example.com:8443/x"
    assert link_key(None) is None


# -- look-alikes stay apart --------------------------------------------------------------


def test_same_actor_different_story_stays_apart():
    yellen = mi(
        1,
        "Yellen meets He Lifeng in Washington",
        summary="U.S. Treasury Secretary Janet Yellen met Chinese Vice Premier He Lifeng on "
        "Thursday to discuss economic ties.",
        source="Reuters",
    )
    raimondo = mi(
        2,
        "Raimondo meets He Lifeng",
        summary="Commerce Secretary Gina Raimondo met Chinese Vice Premier He Lifeng on Friday "
        "to discuss export controls.",
        source="Bloomberg",
    )
    yellen2 = mi(
        3,
        "Yellen, He Lifeng hold talks on economic ties",
        summary="Treasury Secretary Janet Yellen and Vice Premier He Lifeng held talks.",
        source="SCMP",
    )
    assert groups(cluster([yellen, raimondo, yellen2])) == [[1, 3], [2]]


def test_headline_case_titles_with_different_principals_stay_apart():
    """In Headline Case every word is capitalised: names are learnt from the summaries."""
    a = mi(
        1,
        "Yellen Meets He Lifeng In Washington",
        summary="Treasury Secretary Janet Yellen met the vice premier.",
    )
    b = mi(
        2,
        "Raimondo Meets He Lifeng In Washington",
        summary="Commerce Secretary Gina Raimondo met the vice premier.",
        source="AP",
    )
    c = mi(
        3,
        "Yellen Holds Talks With He Lifeng",
        summary="Janet Yellen and the vice premier held talks in Washington.",
        source="SCMP",
    )
    assert groups(cluster([a, b, c])) == [[1, 3], [2]]


def test_preview_and_event_stay_apart():
    """Decision: "Blinken to meet Wang Yi" (announced) and "Blinken meets Wang Yi" (done) are
    two stories: that the meeting happened is news even if the preview already ran."""
    preview = mi(
        1,
        "Blinken to meet Wang Yi in Washington",
        summary="Secretary of State Antony Blinken will host Chinese Foreign Minister Wang Yi.",
        source="AP",
        at=timedelta(hours=0),
    )
    event = mi(
        2,
        "Blinken meets Wang Yi in Washington",
        summary="Secretary of State Antony Blinken met Chinese Foreign Minister Wang Yi.",
        source="Reuters",
        at=timedelta(hours=20),
    )
    event2 = mi(
        3,
        "Wang Yi, Blinken hold 'candid' talks in Washington",
        summary="China's top diplomat Wang Yi met Antony Blinken in Washington on Thursday.",
        source="SCMP",
        at=timedelta(hours=21),
    )
    assert groups(cluster([preview, event, event2])) == [[1], [2, 3]]


def test_tracked_actors_in_titles_keep_stories_apart():
    kinds = {"xi": EntryKind.ACTOR, "li-qiang": EntryKind.ACTOR}
    a = mi(
        1,
        "习近平会见布林肯",
        summary="国家主席习近平在北京会见美国国务卿布林肯。",
        hits=[("xi", "习近平", "title")],
    )
    b = mi(
        2,
        "李强会见布林肯",
        summary="国务院总理李强在北京会见美国国务卿布林肯。",
        hits=[("li-qiang", "李强", "title")],
        source="CGTN",
    )
    assert groups(cluster([a, b], entry_kinds=kinds)) == [[1], [2]]


def test_items_more_than_48h_apart_are_not_one_story():
    items = [
        mi(1, "Xi meets Biden at APEC summit in San Francisco", at=timedelta(hours=0)),
        mi(2, "Xi meets Biden at APEC summit, in San Francisco", at=timedelta(hours=30)),
        mi(3, "Xi meets Biden at APEC summit - San Francisco", at=timedelta(hours=60)),
    ]
    stories = cluster(items)
    for s in stories:
        assert s.last - s.first <= timedelta(hours=48)
    assert groups(stories) == [[1, 2], [3]]
    # same title, a week apart: two stories
    assert len(cluster([items[0], mi(4, items[0].stored.item.title, at=timedelta(days=7))])) == 2


def test_cluster_is_order_independent():
    pool = [
        *XI_TRIP,
        mi(11, "Yellen meets He Lifeng in Washington", source="Reuters"),
        mi(12, "Raimondo meets He Lifeng", source="Bloomberg"),
        mi(13, "Yellen, He Lifeng hold talks in Washington", source="SCMP"),
        mi(14, "Blinken to meet Wang Yi", source="AP"),
        mi(15, "Blinken meets Wang Yi", source="Reuters"),
        mi(16, "Taiwan reports Chinese warplanes near island", source="Reuters"),
        mi(17, "Taiwan says Chinese warplanes spotted near island", source="Focus Taiwan"),
    ]
    expected = cluster(pool)
    rng = random.Random(7)
    for _ in range(10):
        shuffled = pool[:]
        rng.shuffle(shuffled)
        got = cluster(shuffled)
        assert got == expected
    assert [1, 3, 7] in groups(expected)
    assert [16, 17] in groups(expected)


def test_duplicate_input_items_count_once():
    a = mi(1, "Rain floods Shanghai streets")
    assert groups(cluster([a, a])) == [[1]]


# -- headline, matches, strength ---------------------------------------------------------


def test_headline_prefers_a_title_match_then_earliest():
    early = mi(
        1,
        "China's top diplomat heads to Washington for talks",
        summary="Foreign Minister Wang Yi will meet Antony Blinken in Washington.",
        hits=[("wang-yi", "Wang Yi", "summary")],
        source="Reuters",
    )
    later = mi(
        2,
        "Wang Yi heads to Washington for talks with Blinken",
        summary="China's top diplomat Wang Yi travels to Washington this week.",
        hits=[("wang-yi", "Wang Yi", "title")],
        source="SCMP",
    )
    (story,) = cluster([early, later])
    assert story.headline.stored.id == 2
    assert story.link == "https://scmp.example/2"
    assert story.outlets == ("Reuters", "SCMP")
    assert story.matches == {"wang-yi": Match("wang-yi", "Wang Yi", Field.TITLE)}


def test_strength_title_hit_then_items_then_actor():
    items = [
        mi(1, "Taiwan Strait tension rises as Xi speaks", hits=[("taiwan", "Taiwan", "title")]),
        mi(
            2,
            "Taiwan Strait tension rises after Xi speech",
            summary="Xi Jinping spoke.",
            hits=[("xi", "Xi Jinping", "summary"), ("taiwan", "Taiwan", "title")],
            source="AP",
        ),
        mi(
            3,
            "Tension in Taiwan Strait rises after Xi remarks",
            summary="Remarks by Xi Jinping; Wang Yi attended.",
            hits=[("xi", "Xi Jinping", "summary"), ("wang-yi", "Wang Yi", "summary")],
            source="SCMP",
        ),
    ]
    (story,) = cluster(items)
    kinds = {"taiwan": EntryKind.TOPIC, "xi": EntryKind.ACTOR, "wang-yi": EntryKind.ACTOR}
    assert story.strength("taiwan", EntryKind.TOPIC) == (1, 2, 0)
    assert story.strength("xi", EntryKind.ACTOR) == (0, 2, 1)
    assert story.strength("wang-yi", EntryKind.ACTOR) == (0, 1, 1)
    # a title hit beats more items; then more items; then actors before topics
    assert story.entries_by_strength(kinds) == ["taiwan", "xi", "wang-yi"]
    assert story.matches["xi"].field == Field.SUMMARY

    a = mi(5, "Summit in Beijing", hits=[("xi", "Xi", "title"), ("trade", "summit", "title")])
    (one,) = cluster([a])
    assert one.entries_by_strength({"xi": EntryKind.ACTOR, "trade": EntryKind.TOPIC}) == [
        "xi",
        "trade",
    ]


# -- ranking -----------------------------------------------------------------------------


def test_rank_outlets_then_entries_then_newer_then_id():
    def story(ids, sources, hits=(), hour=0):
        items = [
            mi(
                i,
                f"Story {ids[0]} about subject zeta{ids[0]} and omega{ids[0]}",
                source=src,
                hits=hits,
                at=timedelta(hours=hour, minutes=k),
            )
            for k, (i, src) in enumerate(zip(ids, sources, strict=True))
        ]
        (s,) = cluster(items)
        return s

    wide = story([1, 2, 3], ["A", "B", "C"])
    two_entries = story([10], ["A"], hits=[("x", "x", "title"), ("y", "y", "title")])
    one_entry_new = story([20], ["A"], hits=[("x", "x", "title")], hour=5)
    one_entry_old = story([30], ["A"], hits=[("x", "x", "title")], hour=1)
    tie_a = story([40], ["A"], hour=1)
    tie_b = story([41], ["A"], hour=1)
    same_outlet_twice = story([50, 51], ["A", "A"], hour=9)
    ranked = rank(
        [tie_b, one_entry_old, same_outlet_twice, tie_a, two_entries, wide, one_entry_new]
    )
    assert [s.id for s in ranked] == [1, 10, 20, 30, 50, 40, 41]
    assert same_outlet_twice.outlets == ("A",)


def test_the_event_outranks_its_bigger_preview_a_month_earlier():
    xi = ("xi", "Xi", "title")
    biden = ("biden", "Biden", "title")
    preview = cluster(
        [
            mi(
                1 + k,
                "Xi to meet Biden at APEC next month",
                source=src,
                hits=[xi, biden],
                at=timedelta(minutes=k),
            )
            for k, src in enumerate(["Reuters", "AP", "SCMP", "BBC"])
        ]
    )
    summit = cluster(
        [
            mi(
                100 + k,
                "Biden and Xi meet in Woodside",
                source=src,
                hits=[xi, biden],
                at=timedelta(days=30, minutes=k),
            )
            for k, src in enumerate(["Reuters", "AP"])
        ]
    )
    assert len(preview) == 1
    assert len(summit) == 1
    ranked = rank([*preview, *summit])
    assert [len(s.outlets) for s in ranked] == [2, 4]
    # on the same day, more outlets still rank first
    same_day = rank([*preview, *summit], now=preview[0].last)
    assert [len(s.outlets) for s in same_day] == [4, 2]


# -- scale -------------------------------------------------------------------------------


def test_thousands_of_items_cluster_fast_and_right():
    rng = random.Random(3)
    vocab = [f"word{i}" for i in range(3000)]
    items = []
    n_stories = 700
    for s in range(n_stories):
        base = [f"Name{s}", f"Place{s}", *rng.sample(vocab, 6)]
        for k in range(3):
            words = rng.sample(base[2:], 5)
            title = f"Name{s} {' '.join(words)} in Place{s}"
            items.append(
                mi(
                    len(items) + 1,
                    title,
                    summary=f"Name{s} said {' '.join(rng.sample(base[2:], 4))} today.",
                    source=f"Outlet{k}",
                    at=timedelta(minutes=rng.randrange(24 * 60)),
                )
            )
    stories = cluster(items)  # (its speed is a benchmark's business, not this test's)
    assert len(items) == 2100
    assert len(stories) == n_stories
    assert all(len(s.outlets) == 3 for s in stories)


@pytest.mark.parametrize("n", [0, 1])
def test_tiny_batches(n):
    items = [mi(i + 1, "Only story") for i in range(n)]
    assert len(cluster(items)) == n


# -- outlets that carried a duplicate copy (sightings) -----------------------------------


def seen_by(item, *outlets):
    """``item`` with sightings: (outlet, offset from T0 when its copy was fetched)."""
    from dataclasses import replace

    from bot.core.ports import Sighting

    return replace(
        item,
        sightings=tuple(
            Sighting(feed_id=90 + k, source=name, link=None, seen_at=T0 + offset)
            for k, (name, offset) in enumerate(outlets)
        ),
    )


def test_sightings_count_as_outlets_by_first_seen():
    chips = seen_by(
        mi(1, "Commerce widens export controls on AI chips", source="Capital Ledger"),
        ("Newsroom Digest", timedelta(hours=2)),
        ("Capital Ledger", timedelta(hours=3)),  # its own outlet: counted once
        ("Harbor Wire", timedelta(minutes=30)),
    )
    follow_up = mi(
        2,
        "Commerce widens export controls on AI chips, China protests",
        source="Pacific Monitor",
        at=timedelta(hours=1),
    )
    (story,) = cluster([follow_up, chips])
    assert story.outlets == ("Capital Ledger", "Harbor Wire", "Pacific Monitor", "Newsroom Digest")
    assert len(story.items) == 2  # a sighting is an outlet, not an item


def test_an_item_seen_at_the_same_time_keeps_its_own_outlet_first():
    item = mi(1, "Blinken lands in Beijing", source="Reuters", at=T0)
    (story,) = cluster([seen_by(item, ("Aggregator", timedelta(0)))])
    assert story.outlets == ("Reuters", "Aggregator")


def test_rank_counts_outlets_that_only_carried_a_copy():
    syndicated = seen_by(
        mi(1, "Alpha story about zeta omega", at=timedelta(hours=1)),
        ("Outlet B", timedelta(hours=1)),
        ("Outlet C", timedelta(hours=2)),
    )
    two_items = [
        mi(10, "Beta story about kappa lambda", source="A", at=timedelta(hours=5)),
        mi(11, "Beta story about kappa lambda again", source="B", at=timedelta(hours=6)),
    ]
    ranked = rank(cluster([*two_items, syndicated]))
    assert [(s.id, len(s.outlets)) for s in ranked] == [(1, 3), (10, 2)]


def test_digest_line_names_every_outlet_that_carried_the_story():
    from factories import E, entries

    from bot.core.digest import build_digest

    item = seen_by(
        mi(
            1,
            "Commerce widens export controls on AI chips",
            source="Capital Ledger",
            hits=[("trade", "export controls", "title"), ("unknown", "x", "title")],
        ),
        ("Newsroom Digest", timedelta(hours=1)),
    )
    digest = build_digest(
        [item],
        entries=entries(E("trade", EntryKind.TOPIC, "US-China trade")),
        period_start=T0 - timedelta(hours=1),
        period_end=T0 + timedelta(hours=5),
        tz="UTC",
        now=T0 + timedelta(hours=5),
    )
    [line] = digest.lines()
    assert line.outlets == ("Capital Ledger", "Newsroom Digest")
    assert line.item_count == 1


# -- across languages ----------------------------------------------------------------

ACTORS = {
    "xi": EntryKind.ACTOR,
    "biden": EntryKind.ACTOR,
    "li-qiang": EntryKind.ACTOR,
    "wang-yi": EntryKind.ACTOR,
    "blinken": EntryKind.ACTOR,
    "sullivan": EntryKind.ACTOR,
    "apec": EntryKind.TOPIC,
}


BIDEN = ("biden", "拜登", "title")
XI_BIDEN = [("xi", "习近平", "title"), BIDEN]


def zh_item(id, title, summary="", *, at, hits):
    from dataclasses import replace

    item = mi(id, title, summary=summary, source="东岸时报", at=at, hits=hits)
    return replace(item, stored=replace(item.stored, item=replace(item.stored.item, lang="zh")))


SUMMIT_EN = mi(
    1,
    "Biden and Xi meet outside San Francisco, agree to reopen military hotline",
    summary="The two leaders held four hours of talks at a country estate on the sidelines "
    "of the APEC summit, their first face-to-face meeting in a year.",
    source="Harbor Wire",
    at=timedelta(hours=10),
    hits=[("biden", "Biden", "title"), ("xi", "Xi", "title"), ("apec", "APEC", "summary")],
)
SUMMIT_ZH = zh_item(
    2,
    "习近平同拜登在旧金山举行中美元首会晤",
    "国家主席习近平在美国旧金山斐洛里庄园同美国总统拜登举行会晤。",
    at=timedelta(hours=10, minutes=20),
    hits=XI_BIDEN,
)
EXPO_EN = mi(
    3,
    "Premier Li Qiang courts foreign investors at Shanghai expo",
    summary="Li promised wider market access and fewer data rules as he opened the import "
    "fair, a week before the APEC meetings in San Francisco.",
    source="Lantern Review",
    at=timedelta(hours=0),
    hits=[("li-qiang", "Premier Li", "title"), ("apec", "APEC", "summary")],
)
EXPO_ZH = zh_item(
    4,
    "李强出席第六届进博会开幕式",
    "国务院总理李强在上海出席第六届中国国际进口博览会开幕式并发表主旨演讲。",
    at=timedelta(minutes=30),
    hits=[("li-qiang", "李强", "title")],
)
ALBANESE_EN = mi(
    5,
    "Li Qiang meets Australian prime minister Albanese in Beijing",
    summary="The premier and his visitor agreed to resume annual leaders' talks after a "
    "three-year freeze over trade disputes.",
    source="Lantern Review",
    at=timedelta(hours=28),
    hits=[("li-qiang", "Li Qiang", "title")],
)


def test_english_and_chinese_reports_of_one_event_are_one_story():
    stories = cluster([SUMMIT_EN, SUMMIT_ZH, EXPO_EN, EXPO_ZH, ALBANESE_EN], entry_kinds=ACTORS)
    assert groups(stories) == [[1, 2], [3, 4], [5]]
    summit = next(s for s in stories if s.id == 1)
    assert set(summit.outlets) == {"Harbor Wire", "东岸时报"}


def test_a_story_is_headed_in_the_channels_language():
    # the Chinese title names more entries (it would win on entries alone)
    zh_more = zh_item(
        2,
        "习近平同拜登在旧金山举行中美元首会晤 出席亚太经合组织会议",
        "国家主席习近平在美国旧金山同美国总统拜登举行会晤。",
        at=timedelta(hours=9),
        hits=[*XI_BIDEN, ("apec", "亚太经合组织", "title")],
    )
    (en,) = cluster([SUMMIT_EN, zh_more], entry_kinds=ACTORS, language="en")
    assert en.title.startswith("Biden and Xi meet")
    (zh,) = cluster([SUMMIT_EN, zh_more], entry_kinds=ACTORS, language="zh")
    assert zh.title.startswith("习近平同拜登")
    (default,) = cluster([SUMMIT_EN, zh_more], entry_kinds=ACTORS)
    assert default.title.startswith("习近平同拜登")  # no language: most entries, as before


@pytest.mark.parametrize(
    ("zh", "why"),
    [
        (
            zh_item(
                10,
                "习近平将同拜登在旧金山会晤",
                "习近平将出席会议并同拜登会晤。",
                at=timedelta(hours=10),
                hits=XI_BIDEN,
            ),
            "a preview is not the event",
        ),
        (
            zh_item(
                11,
                "王毅在旧金山会见拜登",
                "外长王毅同美国总统拜登举行会晤。",
                at=timedelta(hours=10),
                hits=[("wang-yi", "王毅", "title"), BIDEN],
            ),
            "another principal",
        ),
        (
            zh_item(
                12,
                "习近平同拜登在旧金山举行中美元首会晤",
                "习近平同拜登举行会晤。",
                at=timedelta(hours=40),
                hits=XI_BIDEN,
            ),
            "more than a day apart",
        ),
        (
            zh_item(
                13, "习近平同拜登通电话", "两国元首通电话。", at=timedelta(hours=10), hits=XI_BIDEN
            ),
            "no shared wording",
        ),
    ],
)
def test_reports_in_two_languages_stay_apart_without_all_the_evidence(zh, why):
    assert groups(cluster([SUMMIT_EN, zh], entry_kinds=ACTORS)) == [[1], [zh.stored.id]], why


def test_one_shared_entry_needs_two_shared_concepts():
    # Li Qiang in both titles, but the Albanese meeting shares only "premier" with the expo
    early = zh_item(
        4,
        "李强出席第六届进博会开幕式",
        "国务院总理李强发表主旨演讲。",
        at=timedelta(hours=27),
        hits=[("li-qiang", "李强", "title")],
    )
    assert groups(cluster([ALBANESE_EN, early], entry_kinds=ACTORS)) == [[4], [5]]


def test_traditional_characters_join_too():
    hant = zh_item(
        20,
        "習近平與拜登舊金山會談 同意恢復兩軍高層溝通",
        "兩國元首在舊金山會晤。",
        at=timedelta(hours=11),
        hits=[("xi", "習近平", "title"), ("biden", "拜登", "title")],
    )
    assert groups(cluster([SUMMIT_EN, hant], entry_kinds=ACTORS)) == [[1, 20]]
