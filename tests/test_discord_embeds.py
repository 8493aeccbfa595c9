"""Discord rendering without a network: digests as embeds within Discord's limits,
reply text made inert, per-part nonces."""

from __future__ import annotations

import random
from datetime import timedelta

from factories import T0, E, entries, mi

from bot.adapters.discord.embeds import (
    COLOUR_BY_KIND,
    Outgoing,
    digest_messages,
    reply_messages,
    safe_text,
    story_line,
    text_chunks,
)
from bot.adapters.discord.sink import part_nonce
from bot.core.digest import Digest, build_digest
from bot.core.models import EntryKind
from bot.core.replies import Attachment, Reply

ZW = "\u200b"
XI = E("xi", EntryKind.ACTOR, "Xi Jinping")
EXPORT = E("export", EntryKind.TOPIC, "Export controls")
ENTRIES = entries(XI, EXPORT)


def words(rng: random.Random, n: int) -> str:
    return " ".join(
        "".join(rng.choice("bcdfgklmnprstvz") + rng.choice("aeiou") for _ in range(4))
        for _ in range(n)
    )


def big_digest(n: int = 60, *, title_words: int = 40, max_stories: int = 100) -> Digest:
    rng = random.Random(1)
    items = []
    for i in range(1, n + 1):
        entry = "xi" if i % 4 else "export"
        alias = "Xi" if entry == "xi" else "export controls"
        items.append(mi(i, f"{alias} {words(rng, title_words)}", hits=[(entry, alias, "title")]))
    return build_digest(
        items,
        entries=ENTRIES,
        period_start=T0,
        period_end=T0 + timedelta(days=1),
        tz="UTC",
        now=T0 + timedelta(days=1),
        max_stories=max_stories,
    )


def total(message: Outgoing) -> int:
    return sum(len(e) for e in message.embeds)


def test_a_large_digest_is_split_within_every_discord_limit() -> None:
    digest = big_digest(60)
    messages = digest_messages(digest)
    assert len(messages) >= 3
    for m in messages:
        assert 1 <= len(m.embeds) <= 10
        assert total(m) <= 6000
        for e in m.embeds:
            assert len(e.title or "") <= 256
            assert len(e.description or "") <= 4096
            assert len(e.footer.text or "") <= 2048
    n = len(messages)
    footers = [m.embeds[-1].footer.text for m in messages]
    assert footers == [f"part {i}/{n}" for i in range(1, n + 1)]
    embeds = [e for m in messages for e in m.embeds]
    assert embeds[0].title == "Digest"
    titles = [e.title for e in embeds[1:]]
    assert titles[0] == "Xi Jinping"
    assert "Xi Jinping (cont.)" in titles  # a long entry continues in the next embed
    assert titles[-1].startswith("Export controls")
    assert {e.colour.value for e in embeds[1:] if e.title.startswith("Xi")} == {  # type: ignore[union-attr]
        COLOUR_BY_KIND[EntryKind.ACTOR]
    }
    lines = [x for e in embeds[1:] for x in (e.description or "").splitlines()]
    assert len(lines) == 60  # every story once, none lost at a cut


def test_truncated_digest_says_how_many_more() -> None:
    digest = big_digest(12, title_words=3, max_stories=10)
    (message,) = digest_messages(digest)
    assert message.embeds[-1].footer.text == "…and 2 more stories not shown (limit 10)."
    assert "10 of 12 stories" in (message.embeds[0].description or "")


def test_a_story_line_stays_short_and_drops_an_oversized_link() -> None:
    long_link = "https://news.example/" + "a" * 1900
    item = mi(
        1,
        "Xi " + "very long headline words " * 30,
        link=long_link,
        hits=[("xi", "Xi", "title"), ("export", "export controls", "summary")],
    )
    digest = build_digest(
        [item],
        entries=ENTRIES,
        period_start=T0,
        period_end=T0 + timedelta(hours=3),
        tz="UTC",
        now=T0,
    )
    line = next(digest.lines())
    text = story_line(line)
    assert len(text) <= 600
    assert long_link not in text
    assert "](" not in text
    assert text.endswith("· 🏷 Export controls")
    short = mi(2, "Xi visits", hits=[("xi", "Xi", "title")])
    d2 = build_digest(
        [short],
        entries=ENTRIES,
        period_start=T0,
        period_end=T0 + timedelta(hours=3),
        tz="UTC",
        now=T0,
    )
    assert story_line(next(d2.lines())).startswith(
        "• [Xi visits](https://reuters.example/2) — Reuters · <t:"
    )


def test_an_alert_is_one_embed_per_story() -> None:
    item = mi(
        3,
        "Xi lands in @everyone **San Francisco**",
        summary="For APEC.",
        hits=[("xi", "Xi", "title"), ("export", "export controls", "summary")],
    )
    digest = build_digest(
        [item],
        entries=ENTRIES,
        period_start=T0,
        period_end=T0,
        tz="UTC",
        now=T0,
        kind="alert",
        title="Alert: Xi Jinping",
    )
    (message,) = digest_messages(digest)
    (embed,) = message.embeds
    assert embed.title == f"Xi lands in @{ZW}everyone \\*\\*San Francisco\\*\\*"
    assert embed.url == "https://reuters.example/3"
    assert embed.author.name == "🔔 Xi Jinping"
    assert embed.timestamp == item.stored.item.published
    assert [f.name for f in embed.fields] == ["Matched", "Also tagged"]
    assert embed.footer.text is None


def test_reply_text_is_inert_but_urls_stay_links() -> None:
    line = (
        "Added @everyone <@&12> **Wire** (it moved to https://feeds.example/a_b?x=(1)). "
        "See javascript:alert(1) and www.evil.example"
    )
    text = safe_text(line)
    assert f"@{ZW}everyone" in text
    assert f"\\<{ZW}@&12\\>" in text
    assert "\\*\\*Wire\\*\\*" in text
    assert "<https://feeds.example/a_b?x=%281%29>" in text  # whole, clickable, no preview
    assert text.endswith(f"www{ZW}.evil.example")
    assert ">\\)." in text  # the sentence's own ")." is not part of the URL


def test_long_replies_are_split_at_lines_under_2000() -> None:
    lines = [f"{i}. " + "word " * 60 for i in range(100)]
    chunks = text_chunks(lines)
    assert len(chunks) > 1
    assert all(len(c) <= 2000 for c in chunks)
    rejoined = "\n".join(chunks).splitlines()
    assert [x.split("\\.")[0] for x in rejoined] == [str(i) for i in range(100)]


def test_reply_messages_put_text_digest_and_file_together() -> None:
    digest = big_digest(3, title_words=3)
    out = reply_messages(Reply(lines=("Here:",), digest=digest, ephemeral=False))
    assert out[0].content == "Here:"
    assert out[0].embeds[0].title == "Digest"
    err = reply_messages(Reply(lines=("No such entry",), error=True))
    assert err[0].content == "⚠️ No such entry"
    att = Attachment("feeds.opml", b"<opml/>", "text/x-opml")
    (msg,) = reply_messages(Reply(lines=("2 feeds",), attachment=att))
    file = msg.file()
    assert file is not None
    assert file.filename == "feeds.opml"
    assert reply_messages(Reply())[0].content == "Done."


def test_part_nonces_are_stable_distinct_and_short() -> None:
    nonce = "123456789012345678"
    assert part_nonce(nonce, 0, 1) == nonce
    parts = [part_nonce(nonce, i, 5) for i in range(5)]
    assert len(set(parts)) == 5
    assert nonce not in parts
    assert parts == [part_nonce(nonce, i, 5) for i in range(5)]
    assert all(len(p) <= 25 for p in parts)
    assert len(part_nonce("x" * 40, 0, 1)) <= 25
