from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from factories import E, digest_of, entries, mi

from bot.core.digest import Digest
from bot.core.models import EntryKind
from bot.core.render import (
    format_outlets,
    format_story,
    render_alert,
    render_alerts,
    render_text,
)
from bot.core.safety import (
    ZWSP,
    escape_markdown,
    inert,
    neutralize_links,
    neutralize_mentions,
    safe_url,
)

A, T = EntryKind.ACTOR, EntryKind.TOPIC
ENTRIES = entries(
    E("wang-yi", A, "Wang Yi"),
    E("blinken", A, "Antony Blinken"),
    E("taiwan", T, "Taiwan Strait"),
)


def build(items, **kw):
    return digest_of(items, ENTRIES, **kw)


def wang_story():
    return [
        mi(
            1,
            "Blinken meets Wang Yi in Washington",
            summary="Antony Blinken met Chinese Foreign Minister Wang Yi.",
            source="Reuters",
            hits=[("wang-yi", "Wang Yi", "title"), ("blinken", "Blinken", "title")],
        ),
        *[
            mi(
                n,
                f"Wang Yi, Blinken hold talks in Washington ({src})",
                summary="Wang Yi met Antony Blinken in Washington.",
                source=src,
                hits=[("wang-yi", "王毅", "title")],
            )
            for n, src in ((2, "SCMP"), (3, "AP"), (4, "Nikkei"))
        ],
    ]


# -- header and lines --------------------------------------------------------------------


def test_header_and_line_in_markdown():
    d = build(
        [*wang_story(), mi(9, "Taiwan reports warplanes", hits=[("taiwan", "Taiwan", "title")])],
        failed_feeds=[("Reuters", "HTTP 500"), ("SCMP", "timed out")],
    )
    (text,) = render_text(d)
    assert text.splitlines() == [
        "**Digest** · Tue 14 Nov 07:00 – Wed 15 Nov 07:00 (Asia/Shanghai)",
        "2 stories · 5 items",
        r"⚠ 2 feeds failing: Reuters \(HTTP 500\), SCMP \(timed out\)",
        "",
        "**Wang Yi**",
        "• [Blinken meets Wang Yi in Washington](<https://reuters.example/1>) — "
        "Reuters, SCMP +2 · Tue 08:01 CST · "
        r'\[Wang Yi in title; Antony Blinken: "Blinken" in title\]',
        "",
        "**Taiwan Strait**",
        "• [Taiwan reports warplanes](<https://reuters.example/9>) — Reuters · Tue 08:09 CST · "
        r'\[Taiwan Strait: "Taiwan" in title\]',
    ]


def test_plain_text_puts_the_url_on_its_own_line():
    d = build(wang_story(), failed_feeds=[("Reuters", "HTTP 500")])
    (text,) = render_text(d, markdown=False)
    assert text.splitlines() == [
        "Digest · Tue 14 Nov 07:00 – Wed 15 Nov 07:00 (Asia/Shanghai)",
        "1 story · 4 items",
        "⚠ 1 feed failing: Reuters (HTTP 500)",
        "",
        "Wang Yi",
        "• Blinken meets Wang Yi in Washington — Reuters, SCMP +2 · Tue 08:01 CST "
        '[Wang Yi in title; Antony Blinken: "Blinken" in title]',
        "  https://reuters.example/1",
    ]


def test_times_follow_the_channel_timezone_across_dst():
    # New York leaves DST at 02:00 EDT on Sun 5 Nov 2023: 01:30 happens twice
    start = datetime(2023, 11, 4, 12, 0, tzinfo=UTC)  # Sat 08:00 EDT
    end = datetime(2023, 11, 5, 13, 0, tzinfo=UTC)  # Sun 08:00 EST
    items = [
        mi(
            1,
            "Wang Yi lands in New York",
            at=datetime(2023, 11, 5, 5, 30, tzinfo=UTC),
            hits=[("wang-yi", "Wang Yi", "title")],
        ),
        mi(
            2,
            "Taiwan Strait drills end",
            at=datetime(2023, 11, 5, 6, 30, tzinfo=UTC),
            hits=[("taiwan", "Taiwan", "title")],
        ),
        mi(
            3,
            "Blinken speaks at UN",
            at=datetime(2023, 11, 4, 14, 0, tzinfo=UTC),
            hits=[("blinken", "Blinken", "title")],
        ),
    ]
    d = build(items, period_start=start, period_end=end, now=end, tz="America/New_York")
    (text,) = render_text(d, markdown=False)
    lines = text.splitlines()
    assert lines[0] == "Digest · Sat 4 Nov 08:00 EDT – Sun 5 Nov 08:00 EST (America/New_York)"
    assert "Wang Yi lands in New York — Reuters · 01:30 EDT" in text
    assert "Taiwan Strait drills end — Reuters · 01:30 EST" in text
    assert "Blinken speaks at UN — Reuters · Sat 10:00 EDT" in text
    # the same items seen from Shanghai: no DST, no abbreviations
    d = build(items, period_start=start, period_end=end, now=end, tz="Asia/Shanghai")
    text = render_text(d, markdown=False)[0]
    assert "Sat 4 Nov 20:00 – Sun 5 Nov 21:00 (Asia/Shanghai)" in text
    assert "Wang Yi lands in New York — Reuters · 13:30 " in text
    assert "Taiwan Strait drills end — Reuters · 14:30 " in text


def test_empty_digest_is_an_answer():
    d = build([], failed_feeds=[("SCMP", "timed out")])
    (text,) = render_text(d)
    assert text.splitlines() == [
        "**Digest** · Tue 14 Nov 07:00 – Wed 15 Nov 07:00 (Asia/Shanghai)",
        "No new matching stories since Tue 14 Nov 07:00 (Asia/Shanghai).",
        r"⚠ 1 feed failing: SCMP \(timed out\)",
    ]


def test_truncated_digest_says_how_many_more():
    titles = ["Drills near Kinmen", "Typhoon hits Taipei", "Chip exports rise", "Election poll"]
    items = [
        mi(10 * k, title, hits=[("taiwan", "Taiwan", "title")]) for k, title in enumerate(titles, 1)
    ]
    text = render_text(build(items, max_stories=2))[0]
    assert "2 of 4 stories · 4 items" in text
    assert text.endswith("…and 2 more stories not shown (limit 2).")
    assert text.count("• ") == 2


def test_many_failing_feeds_are_summarised():
    feeds = [(f"Feed {i}", "HTTP 503") for i in range(12)]
    text = render_text(build([], failed_feeds=feeds))[0]
    line = text.splitlines()[2]
    assert line.startswith("⚠ 12 feeds failing: Feed 0 \\(HTTP 503\\), ")
    assert line.endswith(" +7 more")
    # a small budget still holds the header
    (small,) = render_text(
        build([], failed_feeds=feeds, title="A rather long digest title"), budget=200
    )
    assert len(small) <= 200
    assert small.splitlines()[2].startswith("⚠ 12 feeds failing: ")
    assert small.splitlines()[2].endswith(" more")


# -- untrusted text ----------------------------------------------------------------------

HOSTILE = "@everyone **bold** [click](http://evil.example) <@&123> <@42> <#7> @here `x` ||s||"


def test_hostile_title_renders_inert():
    items = [
        mi(
            1,
            HOSTILE,
            source="Evil <@&1> Times",
            link="https://reuters.example/1",
            hits=[("taiwan", "Taiwan", "title")],
        ),
        mi(
            2,
            "# Heading\n- list item 1. [x](javascript:alert(1))",
            link="javascript:alert(1)",
            canonical="javascript:alert(1)",
            hits=[("wang-yi", "Wang Yi", "title")],
        ),
    ]
    d = build(items)
    for markdown in (True, False):
        out = "\n".join(render_text(d, markdown=markdown))
        assert "@everyone" not in out
        assert "@here" not in out
        assert f"@{ZWSP}everyone" in out
        for mention in ("<@&123>", "<@42>", "<#7>", "<@&1>"):
            assert mention not in out
        assert "http://evil" not in out  # no link-able URL from feed text
        assert "javascript" not in out.replace("javascript:alert", "")  # only as inert text
        if markdown:
            assert "**bold**" not in out
            assert r"\*\*bold\*\*" in out
            assert "[click](" not in out
            assert r"\[click\]\(" in out
            # the only link destinations are the items' own web URLs
            assert re.findall(r"\]\(<([^>]*)>\)", out) == ["https://reuters.example/1"]
            assert "\n# " not in out
            assert "\n- " not in out


def test_javascript_link_is_dropped_not_printed():
    items = [
        mi(
            1,
            "Wang Yi speaks",
            link="javascript:alert(1)",
            canonical="javascript:alert(1)",
            hits=[("wang-yi", "Wang Yi", "title")],
        )
    ]
    out = render_text(build(items))[0]
    assert "javascript" not in out
    assert "• Wang Yi speaks — Reuters" in out


def test_escape_markdown():
    assert escape_markdown("**a** _b_ ~c~ `d` |e| > f # g") == (
        r"\*\*a\*\* \_b\_ \~c\~ \`d\` \|e\| \> f \# g"
    )
    assert escape_markdown(r"[x](y) <z> back\slash") == r"\[x\]\(y\) \<z\> back\\slash"
    assert escape_markdown("- item\n+ item\n1. item\n  2. x") == (
        "\\- item\n\\+ item\n1\\. item\n  2\\. x"
    )
    assert escape_markdown("Xi-Biden 2.0 talks") == "Xi-Biden 2.0 talks"


def test_neutralize_mentions_and_links():
    assert neutralize_mentions("@everyone @Here <@123> <@!5> <@&9> <#1> <!channel> a@b.c") == (
        f"@{ZWSP}everyone @{ZWSP}Here <{ZWSP}@123> <{ZWSP}@!5> <{ZWSP}@&9> <{ZWSP}#1> "
        f"<{ZWSP}!channel> a@b.c"
    )
    assert neutralize_links("see https://x.example and www.y.example") == (
        f"see https{ZWSP}://x.example and www{ZWSP}.y.example"
    )
    assert inert("<@1> *x*", markdown=False) == f"<{ZWSP}@1> *x*"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://example.com/a?b=1#c", "https://example.com/a?b=1#c"),
        ("HTTP://Example.COM/Path", "http://example.com/Path"),
        ("https://example.com/a b(c)<d>", "https://example.com/a%20b%28c%29%3Cd%3E"),
        ("https://example.com/%E4%B8%AD", "https://example.com/%E4%B8%AD"),
        ("https://example.com/中文", "https://example.com/%E4%B8%AD%E6%96%87"),
        ("https://user:pw@example.com/x", "https://example.com/x"),
        ("https://例え.jp/x", "https://xn--r8jz45g.jp/x"),
        ("javascript:alert(1)", None),
        ("JaVaScRiPt:alert(1)", None),
        ("data:text/html,hi", None),
        ("//example.com/x", None),
        ("/relative", None),
        ("https://exa\nmple.com", None),
        ("", None),
        (None, None),
        ("https://example.com/" + "a" * 3000, None),
    ],
)
def test_safe_url(url, expected):
    assert safe_url(url) == expected
    if expected:
        assert safe_url(expected) == expected  # idempotent


def test_format_outlets():
    assert format_outlets(["Reuters"]) == "Reuters"
    assert format_outlets(["Reuters", "SCMP"]) == "Reuters, SCMP"
    assert format_outlets(["Reuters", "SCMP", "AP", "Nikkei"]) == "Reuters, SCMP +2"


# -- length budget -----------------------------------------------------------------------


def big_digest(n_per_entry=12, **kw):
    names = {"wang-yi": "Wang Yi", "blinken": "Blinken", "taiwan": "Taiwan"}
    items = []
    for e, alias in names.items():
        for _k in range(n_per_entry):
            n = len(items) + 1
            items.append(
                mi(
                    n,
                    f"Story{n:03d} about {alias}: unique words lorem{n} ipsum{n} dolor{n} "
                    f"sit{n} amet{n} consectetur{n}",
                    source=f"Outlet{n % 5}",
                    at=timedelta(minutes=n),
                    hits=[(e, alias, "title")],
                )
            )
    return build(items, **kw), len(items)


@pytest.mark.parametrize("budget", [200, 333, 500, 900, 2000])
@pytest.mark.parametrize("markdown", [True, False])
@pytest.mark.parametrize("group_by", ["entry", "story"])
def test_split_respects_budget_and_keeps_every_story_once(budget, markdown, group_by):
    d, n = big_digest(group_by=group_by)
    parts = render_text(d, budget=budget, markdown=markdown)
    assert all(len(p) <= budget for p in parts), [len(p) for p in parts]
    joined = "\n".join(parts)
    for k in range(1, n + 1):
        assert joined.count(f"Story{k:03d} ") == 1, k
    # lines are never cut: each story line is printed whole, or (too long for the budget
    # with a part marker and a group header) shortened with an ellipsis in the title
    for line in d.lines():
        full = format_story(line, d, markdown=markdown)
        if full not in joined:
            assert len(full) > budget - 40  # only a line that cannot fit is shortened
            (printed,) = [x for x in joined.splitlines() if f"Story{line.story_id:03d} " in x]
            assert "…" in printed
            assert printed.startswith(f"• {'[' if markdown else ''}Story{line.story_id:03d} ")
    if len(parts) > 1:
        total = len(parts)
        assert parts[0].splitlines()[0].endswith(f" (1/{total})")
        for i, p in enumerate(parts[1:], 2):
            assert p.splitlines()[0] == f"({i}/{total})"
    headers = {f"**{name}**" if markdown else name for name in ("Wang Yi", "Blinken", "Taiwan")}
    for p in parts:
        lines = p.splitlines()
        # a group header is never the last line of a part
        assert lines[-1] not in headers
        assert lines[-1] != ""
        for i, line in enumerate(lines):
            if line in headers or line.endswith(" (cont.)"):
                assert lines[i + 1].startswith("• ")


def test_continued_group_repeats_its_header():
    d, _ = big_digest(group_by="entry")
    parts = render_text(d, budget=400)
    assert len(parts) > 3
    assert any(p.splitlines()[1].endswith("(cont.)") for p in parts[1:])
    for p in parts[1:]:
        # after the marker: a group header, new or continued, never an orphan story
        assert p.splitlines()[1].startswith("**")


def test_single_part_is_not_numbered():
    d, _ = big_digest(n_per_entry=1)
    (text,) = render_text(d, budget=2000)
    assert "(1/1)" not in text


def test_overlong_line_is_shortened_with_ellipsis():
    title = "Wang Yi " + " ".join(f"word{i}" for i in range(1500))
    d = build([mi(1, title, hits=[("wang-yi", "Wang Yi", "title")])])
    (text,) = render_text(d, budget=2000)  # titles are capped at 300 characters
    assert re.search(r"• \[Wang Yi word0 word1 .* word\d+…\]\(<https://reuters\.example/1>\)", text)
    assert len(text) < 500
    parts = render_text(d, budget=200)
    assert all(len(p) <= 200 for p in parts)
    (story,) = [line for p in parts for line in p.splitlines() if line.startswith("• ")]
    assert story.startswith("• [Wang Yi word0 ")
    assert "…](<https://reuters.example/1>) — Reuters · Tue 08:01 CST" in story


def test_budget_too_small_is_refused():
    d, _ = big_digest(n_per_entry=1)
    with pytest.raises(ValueError, match="budget"):
        render_text(d, budget=50)


# -- alerts and round trip ---------------------------------------------------------------


def test_alert_is_one_short_message_per_story():
    d = build(
        [*wang_story(), mi(9, "Taiwan reports warplanes", hits=[("taiwan", "Taiwan", "title")])],
        kind="alert",
    )
    msgs = render_text(d, budget=300)
    assert msgs == [
        "🔔 **Wang Yi** · [Blinken meets Wang Yi in Washington](<https://reuters.example/1>) — "
        r"Reuters, SCMP +2 · Tue 08:01 CST · "
        r'\[Wang Yi in title; Antony Blinken: "Blinken" in title\]',
        "🔔 **Taiwan Strait** · [Taiwan reports warplanes](<https://reuters.example/9>) — "
        r'Reuters · Tue 08:09 CST · \[Taiwan Strait: "Taiwan" in title\]',
    ]
    line = next(d.lines())
    assert render_alert(line, d, markdown=False).startswith(
        "🔔 Wang Yi, Antony Blinken · Blinken meets Wang Yi in Washington — "
    )
    long = build(
        [mi(1, "Wang Yi " + "x " * 400, hits=[("wang-yi", "Wang Yi", "title")])], kind="alert"
    )
    assert all(len(m) <= 200 for m in render_text(long, budget=200))


def test_rendering_a_restored_digest_gives_the_same_messages():
    d, _ = big_digest(failed_feeds=[("Reuters", "HTTP 500")])
    restored = Digest.from_payload(d.to_payload())
    assert render_text(restored, budget=700) == render_text(d, budget=700)


# -- bidi controls -------------------------------------------------------------------------

#: Right-to-left override, isolates, marks, embedding, word joiner: each can reorder what a
#: chat client shows around it.
BIDI = "\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u202a\u202b\u202c\u202d\u2060\u061c"


def _no_bidi(text: str) -> bool:
    return not any(ch in text for ch in BIDI)


def _rendered(d: Digest) -> list[str]:
    """Every way a digest is printed: Markdown, plain text, one alert per story."""
    return [
        *render_text(d),
        *render_text(d, markdown=False),
        *render_alerts(d),
        *render_alerts(d, markdown=False),
    ]


def test_bidi_title_never_reaches_rendered_output():
    items = [
        mi(
            1,
            f"Wang Yi \u202etxet desrever\u202c visits {BIDI}",
            summary=f"\u2067Summary\u2069 {BIDI}",
            hits=[("wang-yi", "Wang Yi", "title")],
        )
    ]
    for out in _rendered(build(items)):
        assert _no_bidi(out), ascii(out)
        assert "Wang Yi txet desrever visits" in out


def test_bidi_feed_name_never_reaches_rendered_output():
    items = [
        mi(
            1,
            "Wang Yi visits",
            source="Evil\u202e Wire\u202c",
            hits=[("wang-yi", "Wang Yi", "title")],
        )
    ]
    d = build(items, failed_feeds=[("\u202eBad Feed", f"HTTP 500 {BIDI}")])
    for out in _rendered(d):
        assert _no_bidi(out), ascii(out)
        assert "Evil Wire" in out
    assert "Bad Feed (HTTP 500" in render_text(d, markdown=False)[0]


def test_bidi_tracked_name_never_reaches_rendered_output():
    names = entries(E("wang-yi", A, f"Wang {BIDI}Yi"), E("taiwan", T, "\u202eTaiwan\u202c"))
    items = [
        mi(1, "Wang Yi visits", hits=[("wang-yi", "Wang\u2066 Yi", "title")]),
        mi(2, "Taiwan reports warplanes", hits=[("taiwan", "Taiwan", "title")]),
    ]
    for group_by in ("entry", "story"):
        for out in _rendered(digest_of(items, names, group_by=group_by)):
            assert _no_bidi(out), ascii(out)
            assert "Wang Yi" in out or "Taiwan" in out
    assert inert(f"a\u202eb{BIDI}c", markdown=False) == "abc"
