from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from factories import T0, E, digest_of, entries, mi

from bot.core.digest import (
    Digest,
    EntryTag,
    FailedFeed,
    Why,
    format_line_time,
    format_period,
    format_time,
)
from bot.core.models import EntryKind, FeedHealth, Field
from bot.errors import InputError, StorageError

A, T = EntryKind.ACTOR, EntryKind.TOPIC
ENTRIES = entries(
    E("wang-yi", A, "Wang Yi"),
    E("blinken", A, "Antony Blinken"),
    E("xi", A, "Xi Jinping"),
    E("taiwan", T, "Taiwan Strait"),
    E("trade", T, "US-China trade"),
)


def build(items, **kw):
    return digest_of(items, ENTRIES, **kw)


def corpus():
    return [
        # a story about Wang Yi and Blinken, 3 outlets; Wang Yi is in every title
        mi(
            1,
            "Blinken meets Wang Yi in Washington",
            summary="Antony Blinken met Chinese Foreign Minister Wang Yi.",
            source="Reuters",
            hits=[("wang-yi", "Wang Yi", "title"), ("blinken", "Blinken", "title")],
        ),
        mi(
            2,
            "Wang Yi, Blinken hold talks in Washington",
            summary="China's top diplomat Wang Yi met the US secretary of state in Washington.",
            source="SCMP",
            hits=[("wang-yi", "Wang Yi", "title")],
        ),
        mi(
            3,
            "Wang Yi meets Blinken at State Department",
            summary="Foreign Minister Wang Yi met Blinken.",
            source="AP",
            hits=[("wang-yi", "王毅", "title"), ("blinken", "Blinken", "title")],
        ),
        # a Taiwan story (topic) that also mentions Xi in the summary: filed under Xi? no:
        # the title hit on the topic is stronger than a summary hit on the actor
        mi(
            4,
            "Taiwan reports Chinese warplanes near island",
            summary="Taiwan's defence ministry said 20 aircraft flew after Xi Jinping spoke.",
            source="Reuters",
            hits=[("taiwan", "Taiwan", "title"), ("xi", "Xi Jinping", "summary")],
        ),
        # a Xi story, 2 outlets
        mi(
            5,
            "Xi Jinping arrives in San Francisco for APEC",
            summary="Chinese President Xi Jinping arrived for the APEC summit.",
            source="Reuters",
            hits=[("xi", "Xi Jinping", "title")],
        ),
        mi(
            6,
            "Xi Jinping lands in San Francisco ahead of APEC summit",
            summary="Xi Jinping landed in San Francisco for APEC.",
            source="Xinhua",
            hits=[("xi", "习近平", "title")],
        ),
        # a trade story, 1 outlet, with a match for an entry the channel does not have
        mi(
            7,
            "China's exports fall for a sixth month",
            summary="Exports fell 6.4% in October.",
            source="Bloomberg",
            hits=[("trade", "exports", "title"), ("gone", "whatever", "title")],
        ),
        # only an unknown entry: not in the digest at all
        mi(8, "Panda cub born in Chengdu", source="Xinhua", hits=[("pandas", "panda", "title")]),
    ]


def test_grouped_by_entry_actors_first_each_story_once_under_strongest_entry():
    d = build(corpus())
    assert d.group_by == "entry"
    assert [(g.entry_id, g.label, g.kind) for g in d.groups] == [
        ("wang-yi", "Wang Yi", A),  # 3 outlets: the top story
        ("xi", "Xi Jinping", A),
        ("taiwan", "Taiwan Strait", T),
        ("trade", "US-China trade", T),
    ]
    ids = [line.story_id for line in d.lines()]
    assert sorted(ids) == [1, 4, 5, 7]  # every story exactly once
    wang = d.groups[0].stories[0]
    # Wang Yi: title hit in 3 items beats Blinken (title hit in 2): filed under Wang Yi
    assert wang.tags == (EntryTag("blinken", "Antony Blinken"),)
    assert wang.why == (
        Why("wang-yi", "Wang Yi", "Wang Yi", Field.TITLE),
        Why("blinken", "Antony Blinken", "Blinken", Field.TITLE),
    )
    assert wang.outlets == ("Reuters", "SCMP", "AP")
    assert wang.item_count == 3
    assert wang.link == "https://reuters.example/1"
    assert wang.time == T0 + timedelta(minutes=1)
    taiwan = d.groups[2].stories[0]
    assert taiwan.story_id == 4
    assert taiwan.tags == (EntryTag("xi", "Xi Jinping"),)
    # the unknown entry is ignored, the unknown-only item is dropped
    trade = d.groups[3].stories[0]
    assert [w.entry_id for w in trade.why] == ["trade"]
    assert d.story_count == 4
    assert d.item_count == 7
    assert d.truncated == 0
    assert not d.is_empty


def test_groups_ordered_by_their_top_story_within_kind():
    items = [
        # topic story with 3 outlets ranks first overall, but actors come first
        mi(1, "Strait tension as drills begin", source="A", hits=[("taiwan", "Taiwan", "title")]),
        mi(
            2,
            "Strait tension as drills begin today",
            source="B",
            hits=[("taiwan", "Taiwan", "title")],
        ),
        mi(
            3,
            "Strait tension rises as drills begin",
            source="C",
            hits=[("taiwan", "Taiwan", "title")],
        ),
        mi(10, "Blinken lands in Tokyo", source="A", hits=[("blinken", "Blinken", "title")]),
        mi(20, "Wang Yi calls for calm", source="A", hits=[("wang-yi", "Wang Yi", "title")]),
        mi(21, "Wang Yi calls for calm again", source="B", hits=[("wang-yi", "Wang Yi", "title")]),
    ]
    d = build(items)
    assert [g.entry_id for g in d.groups] == ["wang-yi", "blinken", "taiwan"]


def test_grouped_by_story_is_one_ranked_list_with_all_entries_as_tags():
    d = build(corpus(), group_by="story")
    assert len(d.groups) == 1
    (group,) = d.groups
    assert (group.label, group.entry_id, group.kind) == (None, None, None)
    # 3 outlets, 2 outlets, then one outlet each: 2 entries (Taiwan, Xi) before 1 (trade)
    assert [s.story_id for s in group.stories] == [1, 5, 4, 7]
    assert group.stories[0].tags == (
        EntryTag("wang-yi", "Wang Yi"),
        EntryTag("blinken", "Antony Blinken"),
    )
    assert [t.entry_id for t in group.stories[2].tags] == ["taiwan", "xi"]


def test_cap_keeps_the_best_and_says_how_many_more():
    d = build(corpus(), max_stories=2, group_by="story")
    assert [s.story_id for s in d.lines()] == [1, 5]
    assert d.story_count == 4
    assert d.truncated == 2
    assert d.shown_count == 2
    d = build(corpus(), max_stories=2)
    assert sorted(s.story_id for s in d.lines()) == [1, 5]
    assert d.truncated == 2


def test_failed_feeds_from_health_rows_and_pairs():
    health = FeedHealth(
        id=1,
        url="https://reuters.example/feed",
        name="Reuters",
        last_success_at=None,
        last_error="HTTP 500",
        last_error_at=T0,
        consecutive_failures=3,
        next_poll_at=None,
    )
    d = build([], failed_feeds=[health, ("SCMP", "timed out"), ("SCMP", "timed out")])
    assert d.failed_feeds == (FailedFeed("Reuters", "HTTP 500"), FailedFeed("SCMP", "timed out"))


def test_empty_digest_says_so_with_the_period():
    d = build([mi(1, "Panda cub born", hits=[("pandas", "panda", "title")])])
    assert d.is_empty
    assert d.groups == ()
    assert d.story_count == 0
    # START is 23:00 UTC on Mon 13 Nov = 07:00 Tue 14 Nov in Shanghai
    assert d.empty_text() == "No new matching stories since Tue 14 Nov 07:00 (Asia/Shanghai)."


def test_payload_round_trip_through_json():
    d = build(
        corpus(),
        failed_feeds=[("Reuters", "HTTP 500")],
        max_stories=3,
        kind="brief",
        title="Brief: last 24 h",
    )
    data = json.loads(json.dumps(d.to_payload()))
    back = Digest.from_payload(data)
    assert back == d
    assert back.to_payload() == d.to_payload()
    assert back.groups[0].kind is EntryKind.ACTOR
    assert back.lines().__next__().why[0].field is Field.TITLE
    assert back.period_start.tzinfo is not None
    assert back.kind == "brief"
    assert back.title == "Brief: last 24 h"
    empty = build([])
    assert Digest.from_payload(json.loads(json.dumps(empty.to_payload()))) == empty


@pytest.mark.parametrize(
    "mutate",
    [
        lambda p: p.pop("groups"),
        lambda p: p.update(version=99),
        lambda p: p.update(period_start="yesterday"),
        lambda p: p.update(period_end="2023-11-14T08:00:00"),  # naive
        lambda p: p.update(timezone="Mars/Olympus"),
        lambda p: p["groups"][0]["stories"][0].update(why=[["x", "y"]]),
        lambda p: p.update(kind="poem"),
    ],
)
def test_corrupt_payload_is_a_storage_error(mutate):
    payload = build(corpus()).to_payload()
    mutate(payload)
    with pytest.raises(StorageError, match="stored digest"):
        Digest.from_payload(payload)


def test_bad_arguments():
    with pytest.raises(InputError, match="Mars/Olympus"):
        build([], tz="Mars/Olympus")
    with pytest.raises(InputError):
        build([], group_by="outlet")
    with pytest.raises(InputError):
        build([], max_stories=0)
    with pytest.raises(ValueError, match="aware"):
        build([], period_start=datetime(2023, 11, 14))  # noqa: DTZ001 - naive on purpose


def test_headline_link_must_be_web_link_and_title_falls_back():
    items = [
        mi(
            1,
            "",
            summary="Wang Yi met Blinken in Washington on Thursday for talks.",
            link="javascript:alert(1)",
            canonical="javascript:alert(1)",
            hits=[("wang-yi", "Wang Yi", "summary")],
        )
    ]
    (line,) = build(items).lines()
    assert line.link is None
    assert line.title == "Wang Yi met Blinken in Washington on Thursday for talks."
    assert line.summary == ""  # it would only repeat the title


def test_times_are_stored_in_utc():
    ny = datetime(2023, 11, 4, 8, 0, tzinfo=UTC).astimezone()
    d = build([], period_start=ny, period_end=ny + timedelta(days=1), now=ny, tz="America/New_York")
    assert d.period_start.utcoffset() == timedelta(0)
    assert d.period_start == ny


def test_format_period_across_dst_and_years():
    # 08:00 EDT Sat 4 Nov -> 08:00 EST Sun 5 Nov: 25 hours
    start = datetime(2023, 11, 4, 12, 0, tzinfo=UTC)
    end = datetime(2023, 11, 5, 13, 0, tzinfo=UTC)
    assert format_period(start, end, "America/New_York") == (
        "Sat 4 Nov 08:00 EDT – Sun 5 Nov 08:00 EST (America/New_York)"
    )
    assert format_period(start, end, "Asia/Shanghai") == (
        "Sat 4 Nov 20:00 – Sun 5 Nov 21:00 (Asia/Shanghai)"
    )
    ny_eve = datetime(2023, 12, 31, 13, 0, tzinfo=UTC)
    assert format_period(ny_eve, ny_eve + timedelta(days=1), "UTC") == (
        "Sun 31 Dec 2023 13:00 – Mon 1 Jan 2024 13:00 (UTC)"
    )


def test_format_line_time_is_short_but_unambiguous():
    ref = datetime(2023, 11, 15, 0, 0, tzinfo=UTC)  # Wed 08:00 in Shanghai
    sh = "Asia/Shanghai"
    assert format_line_time(ref - timedelta(hours=1), sh, ref=ref) == "07:00"
    assert format_line_time(ref - timedelta(hours=9), sh, ref=ref) == "Tue 23:00"
    assert format_line_time(ref - timedelta(days=10), sh, ref=ref) == "5 Nov 08:00"
    assert format_line_time(ref - timedelta(days=400), sh, ref=ref) == "11 Oct 2022 08:00"
    # the repeated hour on 5 Nov in New York
    first = datetime(2023, 11, 5, 5, 30, tzinfo=UTC)
    second = datetime(2023, 11, 5, 6, 30, tzinfo=UTC)
    ref = datetime(2023, 11, 5, 13, 0, tzinfo=UTC)
    ny = "America/New_York"
    assert format_line_time(first, ny, ref=ref, abbr=True) == "01:30 EDT"
    assert format_line_time(second, ny, ref=ref, abbr=True) == "01:30 EST"


def test_build_is_order_independent():
    items = corpus()
    assert build(items) == build(list(reversed(items)))


def test_format_time_shows_the_zone_and_the_year_when_not_the_current_one():
    now = datetime(2023, 11, 15, 12, 0, tzinfo=UTC)
    when = datetime(2023, 11, 14, 0, 0, tzinfo=UTC)
    assert format_time(when, "Asia/Shanghai", now=now) == "Tue 14 Nov 08:00 CST"
    assert format_time(when, "UTC", now=now) == "Tue 14 Nov 00:00 UTC"
    assert format_time(when, "America/New_York", now=now) == "Mon 13 Nov 19:00 EST"
    # a zone without letters for its offset
    assert format_time(when, "Asia/Dubai", now=now) == "Tue 14 Nov 04:00 UTC+04"
    # another year: shown; the year is the local one
    old = datetime(2022, 12, 31, 20, 0, tzinfo=UTC)
    assert format_time(old, "Asia/Shanghai", now=now) == "Sun 1 Jan 04:00 CST"
    assert format_time(old, "UTC", now=now) == "Sat 31 Dec 2022 20:00 UTC"
