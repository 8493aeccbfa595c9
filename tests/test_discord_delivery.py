"""Digests and alerts delivered to Discord exactly once: embeds within Discord's limits
(6000 characters and 10 embeds per message), rate limits and server errors, a lost answer
to a created message, a retry while a digest is being posted, the gateway down while a
digest is posted, a transient failure and a restart mid-digest, a channel the bot may not
post in. The real adapter, Outbox, Scheduler job bodies and service against the loopback
fake Discord."""

from __future__ import annotations

import asyncio
import random
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import NOW, DiscordEnv, start_discord_env, stop_discord_env
from fakediscord import faults
from fakediscord.models import EPHEMERAL, SEND_MESSAGES, Overwrite

from bot.adapters.discord.embeds import COLOUR_BY_KIND
from bot.adapters.discord.sink import part_nonce
from bot.core.delivery import backoff
from bot.core.digest import Digest
from bot.core.models import EntryKind
from bot.core.ports import MatchedItem
from bot.core.schedule import slot_key
from bot.storage.sql import SqlStorage

pytestmark = pytest.mark.filterwarnings("error::ResourceWarning")

SLOT = NOW  # a digest slot at noon: the seeded items (10:00) are in its period
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
ZW = "\u200b"


def long_titles(n: int, *, seed: int = 7, lead: int = 0) -> list[str]:
    """``n`` distinct headlines (~200 characters), each naming a tracked actor (the
    first ``lead`` all Xi Jinping), with no words in common beyond the name (so no two
    cluster into one story)."""
    rng = random.Random(seed)
    alphabet = "bcdfghjklmnprstvz"
    vowels = "aeiou"
    used: set[str] = set()
    titles = []
    for i in range(n):
        words = []
        while len(" ".join(words)) < 180:
            w = "".join(rng.choice(alphabet) + rng.choice(vowels) for _ in range(4))
            if w not in used:
                used.add(w)
                words.append(w)
        name = NAMES[0] if i < lead else NAMES[i % len(NAMES)]
        titles.append(f"{name} {' '.join(words)}")
    return titles


def posts(env: DiscordEnv, channel_id: int) -> list[Any]:
    return env.fake.requests("POST", rf"/channels/{channel_id}/messages")


def bot_messages(env: DiscordEnv, channel_id: int) -> list[dict[str, Any]]:
    return [m for m in env.fake.channel_messages(channel_id) if m.get("nonce")]


def embed_size(embed: dict[str, Any]) -> int:
    n = len(embed.get("title") or "") + len(embed.get("description") or "")
    n += len((embed.get("footer") or {}).get("text") or "")
    n += len((embed.get("author") or {}).get("name") or "")
    return n + sum(len(f["name"]) + len(f["value"]) for f in embed.get("fields") or [])


def story_titles(messages: list[dict[str, Any]]) -> list[str]:
    """The story titles shown, in order (the text of each line's masked link)."""
    out = []
    for m in messages:
        for e in m["embeds"][1:] if m is messages[0] else m["embeds"]:
            out += re.findall(r"^• \[(.+?)\]\(", e.get("description") or "", re.M)
    return out


async def schedule_at_noon(env: DiscordEnv, channel: str = "general") -> tuple[Any, Any]:
    """``/digest schedule time:12:00`` in ``channel``, run the day before SLOT (noon), so
    the first scheduled digest covers the day up to SLOT; the clock is then at SLOT.
    Returns the channel's record and the job the Scheduler registered for it."""
    env.clock.set(SLOT - timedelta(days=1))
    scheduled = await env.command("digest schedule", {"time": "12:00"}, channel=channel)
    assert "Digest scheduled at 12:00" in scheduled.callback.json["data"]["content"]
    env.clock.set(SLOT)
    record = await env.channel_record(0, channel)
    scheduler = env.app.scheduler
    job = scheduler._aps.get_job(f"digest:{record.id}")
    assert job is not None
    assert job.func == scheduler._digest_job
    assert tuple(job.args) == (record.id,)
    assert job.trigger.get_next_fire_time(None, SLOT - timedelta(minutes=1)) == SLOT
    return record, job


async def fire(job: Any) -> None:
    """What APScheduler does when the job's time comes: await its body (the Scheduler's
    ``_digest_job``, which works out the slot from the clock: SLOT)."""
    await job.func(*job.args, **job.kwargs)


# -- a scheduled digest ---------------------------------------------------------------


async def test_scheduled_digest_is_embeds_split_in_order_within_limits(
    discord_env: DiscordEnv,
) -> None:
    env = discord_env
    titles = long_titles(38, lead=20)  # + 1 topic story: 39, under max_stories (40)
    await env.seed(titles)
    # and a topic
    await env.seed(["US widens export controls on chips to China"], ago=timedelta(hours=3))
    channel = env.channel(0, "news")
    record, job = await schedule_at_noon(env, "news")

    await fire(job)  # the scheduled run at noon

    messages = bot_messages(env, channel.id)
    assert len(messages) >= 3  # ~40 long stories: more than one message can hold
    for m in messages:
        assert 1 <= len(m["embeds"]) <= 10
        assert sum(embed_size(e) for e in m["embeds"]) <= 6000
        for e in m["embeds"]:
            assert len(e.get("title") or "") <= 256
            assert len(e.get("description") or "") <= 4096
        assert m["mention_everyone"] is False
    n = len(messages)
    footers = [m["embeds"][-1]["footer"]["text"] for m in messages]
    assert [f.rsplit("part ", 1)[1] for f in footers] == [f"{i}/{n}" for i in range(1, n + 1)]
    header = messages[0]["embeds"][0]
    assert header["title"] == "Digest"
    assert "\n39 stories · 39 items" in header["description"]
    # every story once, in rank order within its entry; entries coloured by kind
    shown = story_titles(messages)
    assert len(shown) == 39 == len(set(shown))
    colours = {
        e.get("title", "").removesuffix(" (cont.)"): e["color"]
        for m in messages
        for e in m["embeds"][1:]
        if e.get("title") != "Digest"
    }
    assert colours["Xi Jinping"] == COLOUR_BY_KIND[EntryKind.ACTOR]
    assert colours["Export controls"] == COLOUR_BY_KIND[EntryKind.TOPIC]
    assert any(
        e["title"].endswith("(cont.)") for m in messages for e in m["embeds"] if e.get("title")
    )
    # one nonce per part, stable, distinct, within Discord's 25 characters
    sent = posts(env, channel.id)
    nonces = [p.json["nonce"] for p in sent]
    assert len(set(nonces)) == n
    assert all(len(x) <= 25 for x in nonces)
    assert all(p.json["enforce_nonce"] is True for p in sent)
    assert all(p.json["allowed_mentions"] == {"parse": []} for p in sent)
    delivery = await env.app.storage.get_delivery(record.id, slot_key(SLOT, record.timezone))
    assert delivery.status == "sent"
    assert delivery.message_ids == [m["id"] for m in messages]
    assert nonces == [part_nonce(delivery.nonce, i, n) for i in range(n)]
    assert (await env.app.storage.channel_by_id(record.id)).last_digest_at == SLOT

    # the same slot again (a late or coalesced run, a restart's catch-up): nothing more
    await fire(job)
    assert await env.app.scheduler.catch_up() == []
    assert await env.app.outbox.retry_pending(force=True) == 0
    assert len(posts(env, channel.id)) == n


async def test_rate_limit_and_server_error_are_waited_out_and_posted_once(
    discord_env: DiscordEnv,
) -> None:
    env = discord_env
    await env.seed(["Blinken meets Wang Yi in Washington"])
    channel = env.channel()
    record = await env.channel_record()
    env.fake.script(
        "POST",
        rf"/channels/{channel.id}/messages",
        faults.server_error(500),
        faults.rate_limited(0.2),  # (discord.py waits 1 s on a 500)
    )
    await env.app.service.send_scheduled_digest(record.id, SLOT)
    sent = posts(env, channel.id)
    assert [p.status for p in sent] == [500, 429, 200]
    assert sent[2].at - sent[1].at >= 0.2  # Retry-After honoured
    assert len({p.json["nonce"] for p in sent}) == 1  # the same message each time
    assert len(bot_messages(env, channel.id)) == 1
    delivery = await env.app.storage.get_delivery(record.id, slot_key(SLOT, record.timezone))
    assert delivery.status == "sent"


# -- failures in the middle of a digest ---------------------------------------------


@pytest.mark.usefixtures("fast_shards")
async def test_transient_failure_mid_digest_then_restart_posts_only_the_rest(
    fake_discord: Any, tmp_path: Path, feed_site: Any
) -> None:
    db = f"sqlite+aiosqlite:///{tmp_path / 'briefbot.db'}"
    env = await start_discord_env(fake_discord, tmp_path, feed_site, storage=SqlStorage(db))
    try:
        await env.seed(long_titles(40, seed=3))
        channel = env.channel()
        record = await env.channel_record()
        storage = env.app.storage
        real = storage.record_progress

        async def fail_next_part(delivery_id: int, ids: list[str]) -> None:
            await real(delivery_id, ids)
            if len(ids) == 1:  # part 1 confirmed: Discord fails part 2 (a 503)
                env.fake.script(
                    "POST", rf"/channels/{channel.id}/messages", faults.server_error(503)
                )

        storage.record_progress = fail_next_part
        await env.app.service.send_scheduled_digest(record.id, SLOT)
        (pending,) = await storage.pending_deliveries(record.id)
        assert pending.attempts == 1
        assert "503" in (pending.last_error or "")
        assert len(pending.message_ids) == 1
        assert len(bot_messages(env, channel.id)) == 1
        status = await env.command("status")
        assert "Waiting to post: 1" in status.callback.json["data"]["content"]
    finally:
        await stop_discord_env(env)

    # a new process on the same database: once connected, it sends what is pending, once
    before = len(fake_discord.requests("POST", rf"/channels/{channel.id}/messages"))
    env = await start_discord_env(fake_discord, tmp_path, feed_site, storage=SqlStorage(db))
    try:
        for _ in range(200):
            if not await env.app.storage.pending_deliveries():
                break
            await asyncio.sleep(0.02)
        assert not await env.app.storage.pending_deliveries()
        messages = bot_messages(env, channel.id)
        n = len(messages)
        assert n >= 3
        sent = posts(env, channel.id)[before:]
        assert len(sent) == n - 1  # part 1 was not sent again
        first_nonce = posts(env, channel.id)[0].json["nonce"]
        assert first_nonce not in [p.json["nonce"] for p in sent]
        assert len(story_titles(messages)) == 40 == len(set(story_titles(messages)))
        delivery = await env.app.storage.get_delivery(record.id, slot_key(SLOT, record.timezone))
        assert delivery.status == "sent"
        assert delivery.message_ids == [m["id"] for m in messages]
        assert await env.app.outbox.retry_pending(force=True) == 0
    finally:
        await stop_discord_env(env)


async def test_gateway_down_while_the_digest_is_posted_loses_and_doubles_nothing(
    discord_env: DiscordEnv,
) -> None:
    env = discord_env
    fake = env.fake
    await env.seed(long_titles(40, seed=5))
    guild = fake.guild_list[0]
    channel = env.channel()
    record, job = await schedule_at_noon(env)
    shard = fake.shard_of(guild.id)
    session = fake.gateway.shard_sessions[shard]

    # the shard's connection drops, and the gateway stays unreachable for now
    fake.hold_gateway()
    connects = len(fake.gateway_connects)
    assert fake.drop_gateway(shard) == 1
    for _ in range(200):  # discord.py noticed, and is trying to reconnect
        if len(fake.gateway_connects) > connects:
            break
        await asyncio.sleep(0.01)
    assert len(fake.gateway_connects) > connects
    assert session.conn is None
    # a user runs a command meanwhile: Discord keeps the event for the session
    waiting = await fake.send_interaction(
        "status", {}, guild_id=guild.id, channel_id=channel.id, user=fake.reader
    )

    await fire(job)  # noon: the digest is posted (REST) while the shard is disconnected

    assert session.conn is None  # it was, all along
    assert waiting.callback is None
    delivery = await env.app.storage.get_delivery(record.id, slot_key(SLOT, record.timezone))
    assert delivery.status == "sent"
    messages = bot_messages(env, channel.id)
    sent = posts(env, channel.id)
    assert len(sent) == len(messages) == len(delivery.message_ids) >= 3

    # the gateway is back: the shard RESUMEs, the missed command arrives and is answered
    resumed = asyncio.ensure_future(env.client.wait_for("shard_resumed", timeout=10))
    fake.release_gateway()
    assert await resumed == shard
    assert fake.resume_log[-1]["shard_id"] == shard
    assert "INTERACTION_CREATE" in fake.resume_log[-1]["replayed"]
    await waiting.wait_response()
    await env.settle()
    assert waiting.callback.json["type"] == 4
    # nothing lost, nothing doubled: every story once, no message posted again
    assert len(story_titles(messages)) == 40 == len(set(story_titles(messages)))
    assert await env.app.outbox.retry_pending(force=True) == 0
    await fire(job)
    assert len(posts(env, channel.id)) == len(sent)
    assert bot_messages(env, channel.id) == messages
    assert len(fake.identify_log) == 2  # resumed, not a new session


async def test_a_retry_while_a_digest_is_being_posted_does_not_post_it_again(
    discord_env: DiscordEnv,
) -> None:
    """The scheduler's retry job (every minute) and the resend-on-connect run while a
    multi-message digest is being posted: they leave it alone (it is in flight)."""
    env = discord_env
    await env.seed(long_titles(40, seed=11))
    channel = env.channel()
    record, job = await schedule_at_noon(env)
    storage = env.app.storage
    real = storage.record_progress
    retried: list[int] = []

    async def retries_meanwhile(delivery_id: int, ids: list[str]) -> None:
        await real(delivery_id, ids)
        if not retried:  # part 1 is confirmed, the rest is still to post
            retried.append(-1)
            await env.app.scheduler._retry_job()  # the job body: retry_pending()
            retried.append(await env.app.outbox.retry_pending(force=True))

    storage.record_progress = retries_meanwhile
    await fire(job)
    assert retried == [-1, 0]
    messages = bot_messages(env, channel.id)
    sent = posts(env, channel.id)
    assert len(messages) >= 3
    assert [p.status for p in sent] == [200] * len(messages)  # one POST per part
    assert len({p.json["nonce"] for p in sent}) == len(sent)
    assert len(story_titles(messages)) == 40 == len(set(story_titles(messages)))
    delivery = await storage.get_delivery(record.id, slot_key(SLOT, record.timezone))
    assert delivery.status == "sent"
    assert delivery.message_ids == [m["id"] for m in messages]


async def test_a_lost_answer_to_a_created_message_is_retried_and_posted_once(
    discord_env: DiscordEnv,
) -> None:
    """Discord created the message but the connection dropped before its answer: the
    retry carries the same nonce, Discord answers with the message it has."""
    env = discord_env
    await env.seed(["Yellen meets He Lifeng in San Francisco"])
    channel = env.channel()
    record, job = await schedule_at_noon(env)
    storage = env.app.storage
    real_mark_sent = storage.mark_sent
    marked: list[tuple[int, list[str]]] = []

    async def mark_sent(delivery_id: int, *, at: Any, message_ids: Any) -> None:
        marked.append((delivery_id, list(message_ids)))
        await real_mark_sent(delivery_id, at=at, message_ids=message_ids)

    storage.mark_sent = mark_sent
    env.fake.script(
        "POST", rf"/channels/{channel.id}/messages", faults.connection_dropped(after_handling=True)
    )
    await fire(job)

    (first,) = posts(env, channel.id)
    assert first.dropped
    assert first.status == 200  # Discord did create it ...
    (created,) = bot_messages(env, channel.id)
    (pending,) = await storage.pending_deliveries(record.id)  # ... but we never heard
    assert pending.attempts == 1
    assert "connection to Discord failed" in (pending.last_error or "")
    assert marked == []

    # the retry job, once the backoff has passed
    env.clock.advance(seconds=backoff(1).total_seconds() + 1)
    await env.app.scheduler._retry_job()

    first, second = posts(env, channel.id)
    assert not second.dropped
    assert second.json["nonce"] == first.json["nonce"] == pending.nonce
    assert second.response["id"] == created["id"]  # the nonce deduped it
    assert bot_messages(env, channel.id) == [created]  # one message
    assert marked == [(pending.id, [created["id"]])]  # marked sent once
    delivery = await storage.get_delivery(record.id, slot_key(SLOT, record.timezone))
    assert delivery.status == "sent"
    assert await env.app.outbox.retry_pending(force=True) == 0
    assert len(posts(env, channel.id)) == 2


async def test_more_than_10_embeds_are_split_by_the_10_embed_limit(
    discord_env: DiscordEnv,
) -> None:
    """16 entries with one short story each: 17 embeds, far under 6000 characters, so
    only Discord's 10-embeds-per-message limit splits them."""
    env = discord_env
    titles = [
        "Putin tours a tractor plant",
        "Yellen visits a bakery",
        "Raimondo opens a factory",
        "Newsom signs a water bill",
        "Li Shangfu misses a forum",
        "He Lifeng lands in Seattle",
        "Han Zheng meets students",
        "APEC leaders gather",
        "Taipei votes on budget",
        "Senkaku patrol spotted",
        "Belt and Road forum ends",
        "Xinjiang cotton report",
        "North Korea fires missile",
        "Tehran raises oil output",
        "Hong Kong court rules",
        "Spy balloon debris found",
    ]
    await env.seed(titles)
    channel = env.channel()
    record, job = await schedule_at_noon(env)
    await fire(job)

    delivery = await env.app.storage.get_delivery(record.id, slot_key(SLOT, record.timezone))
    assert delivery.status == "sent"
    digest = Digest.from_payload(delivery.payload)
    assert len(digest.groups) == 16
    assert all(len(g.stories) == 1 for g in digest.groups)
    messages = bot_messages(env, channel.id)
    assert [len(m["embeds"]) for m in messages] == [10, 7]
    assert all(sum(embed_size(e) for e in m["embeds"]) < 5000 for m in messages)
    assert [p.status for p in posts(env, channel.id)] == [200, 200]
    # in order: the header, then one embed per entry as the digest ranks them
    embeds = [e for m in messages for e in m["embeds"]]
    assert embeds[0]["title"] == "Digest"
    assert [e["title"] for e in embeds[1:]] == [g.label for g in digest.groups]
    shown = story_titles(messages)
    assert shown == [line.title for g in digest.groups for line in g.stories]
    assert sorted(shown) == sorted(titles)  # every story once
    assert [m["embeds"][-1]["footer"]["text"] for m in messages] == ["part 1/2", "part 2/2"]


# -- a channel the bot may not post in ------------------------------------------------


async def test_forbidden_channel_pauses_posts_and_tells_admins_once(
    discord_env: DiscordEnv,
) -> None:
    env = discord_env
    fake = env.fake
    await env.seed(["Yellen meets He Lifeng in San Francisco"])
    news = env.channel(0, "news")
    guild = fake.guild_list[0]
    scheduled = await env.command("digest schedule", {"time": "08:00"}, channel="news")
    assert "Digest scheduled" in scheduled.callback.json["data"]["content"]
    news.overwrites.append(Overwrite(guild.id, 0, deny=SEND_MESSAGES))
    record = await env.channel_record(0, "news")

    await env.app.service.send_scheduled_digest(record.id, SLOT)

    (post,) = posts(env, news.id)
    assert post.status == 403
    paused = await env.app.storage.channel_by_id(record.id)
    assert "Missing Permissions" in (paused.paused_reason or "")
    delivery = await env.app.storage.get_delivery(record.id, slot_key(SLOT, record.timezone))
    assert delivery.status == "failed"
    # no retry storm: nothing is attempted again, not even the next slot
    assert await env.app.outbox.retry_pending(force=True) == 0
    await env.app.service.send_scheduled_digest(record.id, SLOT + timedelta(days=1))
    assert len(posts(env, news.id)) == 1

    # /status in that channel says so
    status = await env.command("status", channel="news", user=fake.reader)
    assert "paused" in status.callback.json["data"]["content"]
    # an admin's next command anywhere in the server carries a private notice, once
    hooks = rf"/webhooks/{fake.application_id}/.+"
    seen = len(fake.requests("POST", hooks))
    first = await env.command("watchlist", channel="general")
    notices = [
        r
        for r in fake.requests("POST", rf"/webhooks/{fake.application_id}/{first.token}")
        if "cannot post in" in (r.json.get("content") or "")
    ]
    assert len(notices) == 1
    notice = notices[0].json
    assert notice["flags"] & EPHEMERAL
    assert f"<#{news.id}>" in notice["content"]
    assert "/digest schedule" in notice["content"]
    again = await env.command("watchlist", channel="general")
    assert not [
        r
        for r in fake.requests("POST", rf"/webhooks/{fake.application_id}/{again.token}")
        if "cannot post in" in (r.json.get("content") or "")
    ]
    # readers are not told (they cannot fix it)
    other = fake.guild_list[0]
    assert other.id == guild.id
    reader = await env.command("brief", channel="general", user=fake.reader)
    assert not fake.requests("POST", rf"/webhooks/{fake.application_id}/{reader.token}")
    assert len(fake.requests("POST", hooks)) > seen

    # fixed by an admin: posting resumes
    news.overwrites.clear()
    resumed = await env.command("digest schedule", {"time": "08:00"}, channel="news")
    assert "Posting resumed" in await _text(env, resumed)
    await env.app.service.send_scheduled_digest(record.id, SLOT + timedelta(days=2))
    assert posts(env, news.id)[-1].status == 200
    assert len(bot_messages(env, news.id)) == 1


async def _text(env: DiscordEnv, inter: Any) -> str:
    path = rf"/webhooks/{env.fake.application_id}/{inter.token}"
    parts = [inter.callback.json["data"].get("content") or ""]
    parts += [r.json.get("content") or "" for r in env.fake.requests("POST", path)]
    return "\n".join(parts)


async def test_deleted_channel_is_a_permanent_failure(discord_env: DiscordEnv) -> None:
    env = discord_env
    guild = env.fake.guild_list[1]
    record = await env.app.storage.get_channel(
        "discord", "123456789012345678", guild_id=str(guild.id), name="gone"
    )
    await env.app.service.send_scheduled_digest(record.id, SLOT)
    paused = await env.app.storage.channel_by_id(record.id)
    assert "Unknown Channel" in (paused.paused_reason or "")
    assert "404" in (paused.paused_reason or "")


# -- feed text is inert -----------------------------------------------------------------


async def test_feed_text_with_mentions_and_markdown_is_posted_inert(
    discord_env: DiscordEnv,
) -> None:
    env = discord_env
    fake = env.fake
    guild = fake.guild_list[0]
    role = guild.roles[1].id  # Moderators
    # (feed text reaches us HTML-unescaped: "&lt;@&amp;1&gt;" in a title is "<@&1>")
    title = (
        f"@everyone **BREAKING** &lt;@&amp;{role}&gt; @here "
        "[click me](https://evil.example/x) "
        "Xi Jinping __lands__ `now`"
    )
    await env.seed([title], source="@everyone Wire <@&1>")
    channel = env.channel()
    record = await env.channel_record()

    await env.app.service.send_scheduled_digest(record.id, SLOT)
    inter = await env.command("brief")

    for payload in (posts(env, channel.id)[0].json, inter.callback.json["data"]):
        assert payload["allowed_mentions"] == {"parse": []}
        text = "\n".join(e.get("description") or "" for e in payload["embeds"])
        line = next(x for x in text.splitlines() if "BREAKING" in x)
        assert "@everyone" not in line
        assert "@here" not in line
        assert f"@{ZW}everyone" in line
        assert f"@{ZW}here" in line
        assert f"\\<{ZW}@&{role}\\>" in line
        assert not re.search(r"<[@#][!&]?\d+>", line)  # no mention syntax left
        assert "\\*\\*BREAKING\\*\\*" in line
        assert "\\[click me\\]" in line
        assert "](https://evil" not in line
        assert f"https{ZW}://evil.example" in line
        assert "\\_\\_lands\\_\\_" in line
        assert "\\`now\\`" in line
        # the story's own link is the only link
        assert re.findall(r"\]\((https?://[^)]+)\)", line) == [
            next(
                s.item.link
                for s in await env.app.storage.items_between(NOW - timedelta(days=1), NOW)
            )
        ]
    stored = bot_messages(env, channel.id)[0]
    assert stored["mention_everyone"] is False
    assert stored["mention_roles"] == []
    assert stored["mentions"] == []


async def test_instant_alert_is_an_embed_per_story(discord_env: DiscordEnv) -> None:
    env = discord_env
    tracked = await env.command(
        "track", {"kind": "actor", "name": "Li Qiang", "aliases": "Premier Li", "mode": "instant"}
    )
    assert "posted at once" in tracked.callback.json["data"]["content"]
    stored = await env.seed(
        ["Premier Li meets &lt;@&amp;42&gt; @everyone delegation in Beijing"],
        ago=timedelta(minutes=5),
        summary="Talks on **trade**.",
    )
    await env.app.service.handle_new_items([MatchedItem(stored=s, matches=()) for s in stored])
    channel = env.channel()
    (alert,) = bot_messages(env, channel.id)
    (embed,) = alert["embeds"]
    assert embed["author"]["name"] == "🔔 Li Qiang"
    assert embed["title"].startswith(f"Premier Li meets \\<{ZW}@&42\\> @{ZW}everyone")
    assert embed["url"] == stored[0].item.link
    assert embed["color"] == COLOUR_BY_KIND[EntryKind.ACTOR]
    assert embed["timestamp"].startswith("2023-11-15T11:55")
    assert "Talks on \\*\\*trade\\*\\*." in embed["description"]
    assert embed["fields"][0]["name"] == "Matched"
    # the same story again: no second alert
    await env.app.service.handle_new_items([MatchedItem(stored=s, matches=()) for s in stored])
    assert len(bot_messages(env, channel.id)) == 1
