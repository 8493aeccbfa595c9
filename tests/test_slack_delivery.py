"""Digests and alerts delivered to Slack exactly once, without an idempotency key: Block
Kit within Slack's limits, a dropped connection after Slack accepted a message, a 429,
a restart with pending deliveries, a paused channel, hostile feed text. The real adapter,
Outbox and service against the loopback fake Slack."""

from __future__ import annotations

import random
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fakeslack import FakeSlack
from fakeslack.harness import NOW, SlackEnv, start_slack_env, stop_slack_env

from bot.adapters.slack.blocks import validate_blocks
from bot.adapters.slack.sink import EVENT_TYPE, part_key
from bot.core.schedule import slot_key
from bot.storage.sql import SqlStorage

pytest_plugins = ["fakeslack.pytest_plugin"]

SLOT = NOW
NAMES = [
    "Xi Jinping",
    "Blinken",
    "Yellen",
    "Raimondo",
    "Putin",
    "Wang Yi",
    "Joe Biden",
    "He Lifeng",
]


def long_titles(n: int, *, seed: int = 7) -> list[str]:
    """``n`` distinct headlines (~200 characters), each naming a tracked actor, with no
    words in common beyond the name (so no two cluster into one story)."""
    rng = random.Random(seed)
    used: set[str] = set()
    titles = []
    for i in range(n):
        words: list[str] = []
        while len(" ".join(words)) < 180:
            w = "".join(rng.choice("bcdfghjklmnprstvz") + rng.choice("aeiou") for _ in range(4))
            if w not in used:
                used.add(w)
                words.append(w)
        titles.append(f"{NAMES[i % len(NAMES)]} {' '.join(words)}")
    return titles


def block_texts(blocks: list[dict[str, Any]]) -> str:
    out = []
    for b in blocks:
        if "text" in b:
            out.append(b["text"]["text"])
        out.extend(e.get("text", "") for e in b.get("elements", []) if isinstance(e, dict))
    return "\n".join(out)


def story_titles(env: SlackEnv, channel: str = "C0GENERAL") -> list[str]:
    out = []
    for m in env.fake.posted(channel):
        for b in m.blocks:
            text = b.get("text", {}).get("text", "")
            if text.startswith("*<"):
                out.append(text.split("|", 1)[1].split(">*", 1)[0])
    return out


async def test_a_long_digest_is_split_in_order_within_slacks_limits(slack_env: SlackEnv) -> None:
    env = slack_env
    await env.seed(long_titles(40))
    record = await env.channel_record()
    await env.app.service.send_scheduled_digest(record.id, SLOT)

    posted = env.fake.posted("C0GENERAL")
    assert len(posted) >= 2
    n = len(posted)
    for i, m in enumerate(posted):
        validate_blocks(m.blocks)  # slack_sdk's Block Kit models accept every block
        assert len(m.blocks) <= 50
        for b in m.blocks:
            if b["type"] == "section":
                assert len(b["text"]["text"]) <= 3000
            if b["type"] == "header":
                assert len(b["text"]["text"]) <= 150
            if b["type"] == "context":
                assert len(b["elements"]) <= 10
        assert m.text.startswith(f"Digest ({i + 1}/{n}): 40 stories")  # the fallback
        assert m.args["unfurl_links"] is False
        assert m.args["unfurl_media"] is False
        assert "link_names" not in m.args
        assert m.metadata["event_type"] == EVENT_TYPE
    assert posted[0].blocks[0]["type"] == "header"
    for m in posted[1:]:  # a later message starts with its group's label, never a story
        first = m.blocks[0]["text"]["text"]
        assert first.startswith("*")
        assert not first.startswith("*<")
    shown = story_titles(env)
    assert len(shown) == 40 == len(set(shown))
    delivery = await env.app.storage.get_delivery(record.id, slot_key(SLOT, record.timezone))
    assert delivery.status == "sent"
    assert delivery.message_ids == [m.ts for m in posted]
    keys = [m.metadata["event_payload"]["key"] for m in posted]
    assert keys == [part_key(delivery.nonce, i, n) for i in range(n)]

    # the same slot again: nothing more
    await env.app.service.send_scheduled_digest(record.id, SLOT)
    assert await env.app.outbox.retry_pending(force=True) == 0
    assert len(env.fake.posted("C0GENERAL")) == n


async def test_a_dropped_connection_after_slack_accepted_is_not_posted_twice(
    slack_env: SlackEnv,
) -> None:
    env = slack_env
    await env.seed(long_titles(40, seed=3))
    record = await env.channel_record()
    # part 1 is posted, then the connection drops before its answer: the answer is lost
    env.fake.fail("chat.postMessage", "drop_after")
    await env.app.service.send_scheduled_digest(record.id, SLOT)
    (pending,) = await env.app.storage.pending_deliveries(record.id)
    assert pending.attempts == 1
    assert "connection" in (pending.last_error or "").lower()
    assert len(env.fake.posted("C0GENERAL")) == 1  # Slack has it; we do not know its ts

    assert await env.app.outbox.retry_pending(force=True) == 1
    history = env.fake.called("conversations.history")
    assert history
    assert history[0].args["include_all_metadata"] in ("1", "true", True)
    posted = env.fake.posted("C0GENERAL")
    shown = story_titles(env)
    assert len(shown) == 40 == len(set(shown))  # part 1 once, the rest once
    delivery = await env.app.storage.get_delivery(record.id, pending.key)
    assert delivery.status == "sent"
    assert delivery.message_ids == [m.ts for m in posted]
    # a clean send afterwards does not read the history again
    calls = len(env.fake.called("conversations.history"))
    await env.seed(["Wang Yi meets Blinken again"], ago=timedelta(minutes=30))
    await env.command("digest now")
    assert len(env.fake.called("conversations.history")) == calls


async def test_a_429_is_waited_out_and_posted_once(slack_env: SlackEnv) -> None:
    env = slack_env
    await env.seed(["Xi Jinping and Biden agree to resume military talks"])
    record = await env.channel_record()
    env.fake.fail("chat.postMessage", "ratelimit", retry_after=1)
    started = time.monotonic()
    await env.app.service.send_scheduled_digest(record.id, SLOT)
    calls = env.fake.called("chat.postMessage")
    assert len(calls) == 2
    assert calls[1].at - calls[0].at >= 1.0  # Retry-After honoured
    assert time.monotonic() - started < 10
    (posted,) = env.fake.posted("C0GENERAL")
    delivery = await env.app.storage.get_delivery(record.id, slot_key(SLOT, record.timezone))
    assert delivery.status == "sent"
    assert delivery.message_ids == [posted.ts]
    assert env.fake.called("conversations.history") == []  # a 429 posted nothing


async def test_a_restart_with_pending_deliveries_posts_only_what_is_missing(
    fake_slack: FakeSlack, tmp_path: Path
) -> None:
    db = f"sqlite+aiosqlite:///{tmp_path / 'briefbot.db'}"
    env = await start_slack_env(fake_slack, tmp_path, storage=SqlStorage(db))
    try:
        await env.seed(long_titles(40, seed=5))
        record = await env.channel_record()
        # part 1 posted and confirmed, part 2 posted but its answer lost: the process
        # then stops with the delivery pending
        real = env.bot.sink._post
        count = 0

        async def post_then_die(*args: Any) -> str:
            nonlocal count
            count += 1
            if count == 2:
                env.fake.fail("chat.postMessage", "drop_after")
            return await real(*args)

        env.bot.sink._post = post_then_die
        await env.app.service.send_scheduled_digest(record.id, SLOT)
        (pending,) = await env.app.storage.pending_deliveries(record.id)
        assert len(pending.message_ids) == 1
        assert len(env.fake.posted("C0GENERAL")) == 2
    finally:
        await stop_slack_env(env)

    env = await start_slack_env(fake_slack, tmp_path, storage=SqlStorage(db))
    try:
        assert not await env.app.storage.pending_deliveries()  # sent at start-up
        shown = story_titles(env)
        assert len(shown) == 40 == len(set(shown))
        delivery = await env.app.storage.get_delivery(record.id, pending.key)
        assert delivery.status == "sent"
        assert delivery.message_ids == [m.ts for m in env.fake.posted("C0GENERAL")]
        assert await env.app.outbox.retry_pending(force=True) == 0
    finally:
        await stop_slack_env(env)


@pytest.mark.parametrize(
    ("problem", "expected"),
    [
        ("channel_not_found", "channel_not_found"),
        ("not_in_channel", "invite it with /invite @Briefbot"),
        ("is_archived", "is_archived"),
        ("invalid_auth", "invalid_auth"),
        ("account_inactive", "account_inactive"),
    ],
)
async def test_refusals_pause_the_channel_and_status_says_why(
    slack_env: SlackEnv, problem: str, expected: str
) -> None:
    env = slack_env
    await env.seed(["Xi Jinping and Biden agree to resume military talks"])
    record = await env.channel_record()
    env.fake.fail("chat.postMessage", "error", error=problem)
    await env.app.service.send_scheduled_digest(record.id, SLOT)
    paused = await env.app.storage.channel_by_id(record.id)
    assert paused.paused_reason is not None
    assert expected in paused.paused_reason
    status = await env.command("status")
    shown = block_texts(status.json["blocks"])
    assert "Posting to this channel is paused" in shown
    assert expected.replace("<", "&lt;") in shown
    assert "/briefbot digest schedule" in shown
    # nothing is retried or posted while paused
    calls = len(env.fake.called("chat.postMessage"))
    await env.app.service.send_scheduled_digest(record.id, SLOT + timedelta(days=1))
    assert await env.app.outbox.retry_pending(force=True) == 0
    assert len(env.fake.called("chat.postMessage")) == calls
    # an admin resumes it
    resumed = await env.command("digest schedule time:08:00")
    assert "Posting resumed" in block_texts(resumed.json["blocks"])


async def test_a_channel_the_bot_left_is_paused_by_a_real_refusal(slack_env: SlackEnv) -> None:
    env = slack_env
    env.fake.channels["C0NEWS"].member = False
    await env.seed(["Xi Jinping and Biden agree to resume military talks"])
    record = await env.channel_record("C0NEWS")
    await env.app.service.send_scheduled_digest(record.id, SLOT)
    paused = await env.app.storage.channel_by_id(record.id)
    assert "not_in_channel" in (paused.paused_reason or "")
    assert env.fake.posted("C0NEWS") == []


HOSTILE = [
    "Xi Jinping <!channel> wake up <!here> & <@U0ADMIN> see <#C0SECRET> harbour",
    "Xi Jinping visits Lima: &lt;!channel&gt; ping &lt;@U0ADMIN&gt; in &lt;#C0SECRET&gt; &amp; co",
    "Xi Jinping <https://evil.example/phish|click here> and www.evil.example tariffs",
    "Xi Jinping *bold* _it_ ~strike~ `code` &amp; &lt;b&gt; orchestra",
]


async def test_hostile_feed_text_is_escaped(slack_env: SlackEnv) -> None:
    env = slack_env
    await env.seed(HOSTILE, source="Evil <!everyone> Wire")
    record = await env.channel_record()
    await env.app.service.send_scheduled_digest(record.id, SLOT)
    posted = env.fake.posted("C0GENERAL")
    assert posted
    everything = "\n".join(block_texts(m.blocks) for m in posted)
    assert "&lt;!channel&gt;" in everything  # shown, as text
    assert "&lt;@U0ADMIN&gt;" in everything
    assert "Evil &lt;!everyone&gt; Wire" in everything
    for m in posted:
        validate_blocks(m.blocks)
        text = block_texts(m.blocks) + "\n" + m.text
        for token in (
            "<!channel>",
            "<!here>",
            "<!everyone>",
            "<@U0ADMIN>",
            "<#C0SECRET>",
            "<https://evil.example",
            "https://evil",
            "www.evil",
        ):
            assert token not in text, token
        # the only links are the stories' own
        links = [part.split("|", 1)[0] for part in text.split("<")[1:] if part.startswith("http")]
        assert all(link.startswith("https://wire.example/") for link in links)
        assert "link_names" not in m.args
    # a brief answered in the acknowledgement is escaped too
    answer = await env.command("brief 24")
    shown = "\n".join(block_texts(r.get("blocks", [])) for r in env.responses(answer))
    assert "<!channel>" not in shown
    assert "&lt;!channel&gt;" in shown


async def test_instant_alert_is_one_short_message_per_story(slack_env: SlackEnv) -> None:
    env = slack_env
    await env.command('track kind:actor name:"Li Qiang" mode:instant')
    stored = await env.seed(["Li Qiang visits Berlin for trade talks"], ago=timedelta(minutes=5))
    from bot.core.ports import MatchedItem

    record = await env.channel_record()
    entries = await env.app.storage.channel_entries(record.id)
    assert entries[0].mode == "instant"
    from bot.core.models import Field, Match

    await env.app.service.handle_new_items(
        [MatchedItem(stored=stored[0], matches=(Match("li-qiang", "Li Qiang", Field.TITLE),))]
    )
    posted = env.fake.posted("C0GENERAL")
    assert len(posted) == 1
    (alert,) = posted
    validate_blocks(alert.blocks)
    assert alert.text.startswith("🔔 Li Qiang")
    assert "Li Qiang visits Berlin" in block_texts(alert.blocks)
    assert alert.metadata["event_type"] == EVENT_TYPE
