"""Block Kit rendering: Slack's limits (50 blocks, section 3,000, header 150, 10 context
elements), splitting in order with "(cont.)", fallback text, date tokens, escaping, and
slack_sdk's Block Kit models accepting every block."""

from __future__ import annotations

from datetime import timedelta

import pytest
from factories import E, digest_of, entries, mi
from slack_sdk.errors import SlackObjectFormationError

from bot.adapters.slack.blocks import (
    HEADER_MAX,
    MAX_BLOCKS,
    SECTION_MAX,
    digest_messages,
    escape,
    reply_messages,
    slack_commands,
    validate_blocks,
)
from bot.core.models import EntryKind
from bot.core.replies import Reply

XI = E("xi", EntryKind.ACTOR, "Xi Jinping")
WANG = E("wang", EntryKind.ACTOR, "Wang Yi")
TRADE = E("trade", EntryKind.TOPIC, "Trade")


def many(n: int, entry: E = XI, *, title_len: int = 60) -> list:
    return [
        mi(
            i,
            f"{entry.name} " + " ".join(f"w{i}q{j}" for j in range(title_len // 6)),
            hits=[(entry.id, entry.name, "title")],
            at=timedelta(minutes=i),
            source=f"Outlet {i % 3}",
        )
        for i in range(1, n + 1)
    ]


def check_limits(messages: list) -> None:
    for m in messages:
        validate_blocks(m.blocks)
        assert 1 <= len(m.blocks) <= MAX_BLOCKS
        assert m.text
        assert len(m.text) <= 300
        for b in m.blocks:
            if b["type"] == "section":
                assert len(b["text"]["text"]) <= SECTION_MAX
            elif b["type"] == "header":
                assert len(b["text"]["text"]) <= HEADER_MAX
            elif b["type"] == "context":
                assert 1 <= len(b["elements"]) <= 10


def stories_in(messages: list) -> list[str]:
    return [
        b["text"]["text"].split("|", 1)[1].split(">*", 1)[0]
        for m in messages
        for b in m.blocks
        if b["type"] == "section" and b["text"]["text"].startswith("*<")
    ]


def test_a_short_digest_is_one_message() -> None:
    d = digest_of(many(3), entries(XI))
    (m,) = digest_messages(d)
    check_limits([m])
    assert m.blocks[0] == {
        "type": "header",
        "text": {"type": "plain_text", "text": "📰 Digest", "emoji": True},
    }
    assert m.text == "Digest: 3 stories · 3 items"
    assert m.blocks[2]["text"]["text"] == "*Xi Jinping*"
    assert len(stories_in([m])) == 3


def test_120_stories_split_in_order_at_50_blocks_with_cont_labels() -> None:
    items = many(60, XI) + [
        mi(
            100 + i,
            f"Wang Yi v{i}a v{i}b v{i}c",
            hits=[("wang", "Wang Yi", "title")],
            at=timedelta(minutes=i),
        )
        for i in range(60)
    ]
    d = digest_of(items, entries(XI, WANG), max_stories=200)
    messages = digest_messages(d)
    check_limits(messages)
    n = len(messages)
    assert n == 3
    assert [m.text.split(":")[0] for m in messages] == [
        f"Digest ({i}/{n})" for i in range(1, n + 1)
    ]
    shown = stories_in(messages)
    assert len(shown) == 120 == len(set(shown))
    expected = [line.title for line in d.lines()]
    assert shown == expected  # in order
    for m in messages[1:]:
        assert m.blocks[0]["text"]["text"].endswith("(cont.)")
    # a label is never the last block of a message
    for m in messages:
        last = m.blocks[-1]
        assert (
            last["type"] != "section"
            or last["text"]["text"].startswith("*<")
            or last["type"] == "context"
        )


def test_very_long_titles_and_labels_stay_within_limits() -> None:
    long_entry = E("long", EntryKind.TOPIC, "T" * 400)
    items = [
        mi(
            i,
            "Word " * 200,
            hits=[("long", "word", "title")],
            at=timedelta(minutes=i),
            source="S" * 500,
        )
        for i in range(1, 5)
    ]
    d = digest_of(items, {"long": long_entry}, title="Y" * 400)
    messages = digest_messages(d)
    check_limits(messages)


def test_story_has_link_outlets_date_token_and_why() -> None:
    d = digest_of(
        [
            mi(
                1,
                "Xi meets Biden",
                hits=[("xi", "Xi", "title")],
                source="Reuters",
                link="https://r.example/a?b=1&c=<2>|3",
            )
        ],
        entries(XI),
    )
    (m,) = digest_messages(d)
    story = next(
        b["text"]["text"]
        for b in m.blocks
        if b["type"] == "section" and b["text"]["text"].startswith("*<")
    )
    url = story[2:].split("|", 1)[0]
    assert not set(url) & set("<>|")
    assert url.startswith("https://r.example/a?b=1&amp;c=")
    ts = int(d.groups[0].stories[0].time.timestamp())
    assert f"<!date^{ts}^{{date_short_pretty}} {{time}}|" in story
    assert "Reuters" in story
    assert '_Xi Jinping: "Xi" in title_' in story


def test_empty_digest_says_nothing_new() -> None:
    d = digest_of([], entries(XI))
    (m,) = digest_messages(d)
    check_limits([m])
    assert "No new matching stories since" in m.text


def test_escape_makes_mentions_and_links_inert() -> None:
    text = escape("<!channel> <@U1> <#C1|x> <https://e.example|y> a & b www.e.example")
    assert not set(text) & set("<>")
    assert "&amp;" in text
    assert "https://" not in text
    assert "www.e" not in text


def test_reply_lines_name_briefbot_subcommands_and_are_escaped() -> None:
    assert slack_commands("run /digest schedule, or /help") == (
        "run /briefbot digest schedule, or /briefbot help"
    )
    assert slack_commands("https://x.example/feeds/brief") == "https://x.example/feeds/brief"
    assert slack_commands("* changes the channel's configuration (needs Manage Server)") == (
        "* changes the channel's configuration (needs a workspace admin or owner "
        "(or [slack] managers))"
    )
    (m,) = reply_messages(Reply(lines=("Tracking <!here> (actor)", "see /watchlist"), error=True))
    check_limits([m])
    shown = m.blocks[0]["text"]["text"]
    assert shown.startswith("⚠️ Tracking &lt;!here&gt;")
    assert "/briefbot watchlist" in shown


def test_a_long_reply_is_split_in_sections_between_lines() -> None:
    lines = tuple(f"line {i} " + "z" * 90 for i in range(200))
    messages = reply_messages(Reply(lines=lines))
    check_limits(messages)
    joined = "\n".join(b["text"]["text"] for m in messages for b in m.blocks)
    assert joined.split("\n") == [escape(line) for line in lines]


def test_validate_blocks_refuses_what_slack_would() -> None:
    with pytest.raises(SlackObjectFormationError):
        validate_blocks([{"type": "header", "text": {"type": "plain_text", "text": "x" * 151}}])
    with pytest.raises(SlackObjectFormationError):
        validate_blocks([{"type": "divider"}] * 51)
