"""The Discord adapter's slash commands, end to end: the real discord.py client (run by
``DiscordBot.run``) against the loopback fake Discord, the real service on SQLite."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import pytest
from conftest import NOW, DiscordEnv, start_discord_env, stop_discord_env
from fakediscord.models import APPLICATION_COMMAND, EPHEMERAL
from feedserver import rss

from bot.core.commands import groups
from bot.core.models import FeedSource
from bot.core.service import MANAGE_DENIED

pytestmark = pytest.mark.filterwarnings("error::ResourceWarning")

ENTRY_COUNT = 31  # entries in the shipped default watchlist


def data(inter: Any) -> dict[str, Any]:
    return inter.callback.json.get("data") or {}


def is_ephemeral(payload: dict[str, Any]) -> bool:
    return bool(int(payload.get("flags") or 0) & EPHEMERAL)


async def followups(env: DiscordEnv, inter: Any, n: int = 1) -> list[Any]:
    """The next ``n`` follow-up requests (POST /webhooks/...) of this interaction."""
    path = rf"/webhooks/{env.fake.application_id}/{inter.token}"
    return [await env.fake.wait_for_request("POST", path) for _ in range(n)]


async def all_text(env: DiscordEnv, inter: Any) -> str:
    """The text of the response and of every follow-up."""
    path = rf"/webhooks/{env.fake.application_id}/{inter.token}"
    parts = [data(inter).get("content") or ""]
    parts += [r.json.get("content") or "" for r in env.fake.requests("POST", path)]
    return "\n".join(parts)


# -- registration ---------------------------------------------------------------------


async def test_every_core_command_is_registered_typed_and_permissioned(
    discord_env: DiscordEnv,
) -> None:
    fake = discord_env.fake
    # DISCORD_API_BASE: REST and the gateway URL both came from the fake
    assert fake.requests("GET", r"/gateway")
    put = fake.requests("PUT", rf"/applications/{fake.application_id}/commands")
    assert len(put) == 1
    by_name = {c["name"]: c for c in put[0].json}
    assert set(by_name) == set(groups())

    for name, specs in groups().items():
        cmd = by_name[name]
        if specs[0].sub is None:
            spec = specs[0]
            perms = cmd["default_member_permissions"]  # Manage Server = 1 << 5
            assert (None if perms is None else int(perms)) == (32 if spec.manage else None), name
            assert cmd["contexts"] == [0]  # server channels only
            options = cmd.get("options") or []
            assert {o["name"] for o in options} == {o.name for o in spec.options}
        else:
            assert cmd["default_member_permissions"] is None  # mixes reading and config
            assert [o["name"] for o in cmd["options"]] == [s.sub for s in specs]
            assert all(o["type"] == 1 for o in cmd["options"])

    brief = {o["name"]: o for o in by_name["brief"]["options"]}
    assert (brief["hours"]["type"], brief["hours"]["min_value"], brief["hours"]["max_value"]) == (
        4,
        1,
        720,
    )
    assert brief["entry"]["autocomplete"] is True
    track = {o["name"]: o for o in by_name["track"]["options"]}
    assert [c["value"] for c in track["kind"]["choices"]] == ["actor", "topic"]
    assert [c["value"] for c in track["mode"]["choices"]] == ["digest", "instant"]
    assert track["kind"]["required"]
    assert track["name"]["required"]
    assert not track["aliases"]["required"]
    feeds = {o["name"]: o for o in by_name["feeds"]["options"]}
    assert feeds["import"]["options"][0]["type"] == 11  # an attachment
    assert feeds["remove"]["options"][0]["autocomplete"] is True
    digest = {o["name"]: o for o in by_name["digest"]["options"]}
    assert digest["schedule"]["options"][1]["name"] == "tz"
    assert digest["schedule"]["options"][1]["autocomplete"] is True


# -- reading commands -----------------------------------------------------------------


async def test_brief_is_a_visible_embed_digest(discord_env: DiscordEnv) -> None:
    env = discord_env
    await env.seed(["Wang Yi meets Blinken in Washington", "Local bakery wins a prize"])
    inter = await env.command("brief", user=env.fake.reader)
    body = inter.callback.json
    assert body["type"] == 4
    assert not is_ephemeral(body["data"])
    assert body["data"]["allowed_mentions"] == {"parse": []}
    header, *groups_ = body["data"]["embeds"]
    assert header["title"] == "Brief"
    assert "1 story · 1 item" in header["description"]
    assert "<t:" in header["description"]
    text = "\n".join(e["description"] for e in groups_)
    assert "Wang Yi meets Blinken in Washington" in text
    assert "bakery" not in text
    assert "<t:1700042400:R>" in text  # NOW - 2 h, as a Discord timestamp
    # one entry and the brief of one entry
    inter = await env.command("brief", {"entry": "wang-yi", "hours": 48})
    assert data(inter)["embeds"][0]["title"] == "Brief: Wang Yi"


async def test_empty_brief_is_an_answer(discord_env: DiscordEnv) -> None:
    inter = await discord_env.command("brief")
    header = data(inter)["embeds"][0]
    assert "No new matching stories since <t:" in header["description"]


async def test_unknown_entry_is_a_private_error(discord_env: DiscordEnv) -> None:
    inter = await discord_env.command("brief", {"entry": "nobody at all"})
    assert is_ephemeral(data(inter))
    assert data(inter)["content"].startswith("⚠️ No watchlist entry")
    assert "embeds" not in data(inter)


async def test_watchlist_status_help_search_and_test(discord_env: DiscordEnv) -> None:
    env = discord_env
    await env.seed(["Export controls tightened on chips to China, Raimondo says"])
    wl = await env.command("watchlist", user=env.fake.reader)
    chunks = [data(wl)["content"]]
    chunks += [f.json["content"] for f in await followups(env, wl)]
    assert is_ephemeral(data(wl))
    assert all(len(c) <= 2000 for c in chunks)
    assert "Xi Jinping \\(xi-jinping\\)" in chunks[0]
    assert any("Topics" in c for c in chunks)

    status = await env.command("status", user=env.fake.reader)
    assert is_ephemeral(data(status))
    assert "Feeds: 2" in data(status)["content"]

    help_ = await env.command("help", {"command": "feeds add"})
    assert "needs the Manage Server permission" in data(help_)["content"]

    search = await env.command("search", {"query": "export controls"}, user=env.fake.reader)
    assert not is_ephemeral(data(search))  # search results are for the channel
    assert "Export controls tightened" in data(search)["content"]
    assert "<https://wire.example/" in data(search)["content"]  # the link stays a link

    test = await env.command("test", {"text": "Xi Jinping meets Biden in Woodside"})
    assert is_ephemeral(data(test))
    assert "✓ Xi Jinping \\(xi-jinping\\)" in data(test)["content"]
    bad = await env.command("test", {"text": "x", "entry": "xi-jinping"})
    assert data(bad)["content"].startswith("⚠️ Give text")


async def test_autocomplete_offers_at_most_25_filtered_choices(discord_env: DiscordEnv) -> None:
    env = discord_env
    fake = env.fake
    everything = await fake.send_autocomplete("brief", {"entry": ""}, focused="entry")
    choices = (await everything.wait_response()).json["data"]["choices"]
    assert len(choices) == 25 < ENTRY_COUNT
    typed = await fake.send_autocomplete("untrack", {"entry": "wang"}, focused="entry")
    choices = (await typed.wait_response()).json["data"]["choices"]
    assert choices == [{"name": "Wang Yi (wang-yi)", "value": "wang-yi"}]

    feeds = await fake.send_autocomplete("feeds remove", {"feed": "oth"}, focused="feed")
    choices = (await feeds.wait_response()).json["data"]["choices"]
    assert choices == [
        {"name": "Other Times — https://other.example/rss", "value": "https://other.example/rss"}
    ]
    tz = await fake.send_autocomplete(
        "digest schedule", {"time": "08:00", "tz": "shangh"}, focused="tz"
    )
    choices = (await tz.wait_response()).json["data"]["choices"]
    assert choices == [{"name": "Asia/Shanghai", "value": "Asia/Shanghai"}]


async def test_a_long_feed_url_is_offered_by_its_number(discord_env: DiscordEnv) -> None:
    env = discord_env
    long_url = "https://long.example/" + "feeds/" * 20 + "rss.xml"
    record = await env.channel_record()
    await env.app.storage.add_feed(FeedSource(long_url, "Long One"), channel_id=record.id)
    inter = await env.fake.send_autocomplete("feeds remove", {"feed": "long"}, focused="feed")
    (choice,) = (await inter.wait_response()).json["data"]["choices"]
    listed = [f.url for f in await env.app.storage.channel_feeds(record.id)]
    assert choice["value"] == str(listed.index(long_url) + 1)  # its number in /feeds list
    assert len(choice["name"]) <= 100
    removed = await env.command("feeds remove", {"feed": choice["value"]})
    assert "Removed Long One" in data(removed)["content"]


# -- configuration commands -----------------------------------------------------------


async def test_reader_cannot_configure_and_nothing_changes(discord_env: DiscordEnv) -> None:
    env = discord_env
    reader = env.fake.reader
    attempts: list[tuple[str, dict[str, Any]]] = [
        ("track", {"kind": "actor", "name": "Li Qiang"}),
        ("untrack", {"entry": "wang-yi"}),
        ("digest schedule", {"time": "08:00"}),
        ("digest off", {}),
        ("feeds add", {"url": "https://example.org/rss"}),
        ("feeds remove", {"feed": "1"}),
    ]
    record = await env.channel_record()
    before = (
        await env.app.storage.channel_entries(record.id),
        await env.app.storage.disabled_entries(record.id),
        [f.url for f in await env.app.storage.channel_feeds(record.id)],
    )
    for name, options in attempts:
        inter = await env.command(name, options, user=reader)
        if inter.callback.json["type"] == 5:  # /feeds add defers first (it fetches)
            (answer,) = await followups(env, inter)
            payload = answer.json
            assert is_ephemeral(inter.callback.json["data"])
        else:
            payload = data(inter)
            assert is_ephemeral(payload), name
        assert payload["content"] == "⚠️ " + MANAGE_DENIED, name
    after = (
        await env.app.storage.channel_entries(record.id),
        await env.app.storage.disabled_entries(record.id),
        [f.url for f in await env.app.storage.channel_feeds(record.id)],
    )
    assert after == before
    assert (await env.app.storage.channel_by_id(record.id)).digest_time is None


async def test_track_and_untrack_per_guild(discord_env: DiscordEnv) -> None:
    env = discord_env
    tracked = await env.command(
        "track", {"kind": "actor", "name": "Li Qiang", "aliases": "Premier Li, 李强"}
    )
    assert is_ephemeral(data(tracked))
    assert data(tracked)["content"].startswith("Tracking Li Qiang \\(actor, id li-qiang\\)")
    here = await env.command("watchlist")
    assert "Li Qiang \\(li-qiang\\)" in await all_text(env, here)
    # another server (on the other shard) has its own watchlist
    there = await env.command("watchlist", guild=1)
    assert "li-qiang" not in await all_text(env, there)
    assert env.fake.shard_of(env.fake.guild_list[1].id) != env.fake.shard_of(
        env.fake.guild_list[0].id
    )
    dup = await env.command("track", {"kind": "actor", "name": "Li Qiang"})
    assert data(dup)["content"].startswith("⚠️ ")
    gone = await env.command("untrack", {"entry": "li-qiang"})
    assert "Stopped tracking Li Qiang" in data(gone)["content"]
    record = await env.channel_record()
    assert await env.app.storage.channel_entries(record.id) == []


async def test_digest_schedule_bad_input_and_off(discord_env: DiscordEnv) -> None:
    env = discord_env
    record = await env.channel_record()
    for options in (
        {"time": "25:99"},
        {"time": "08:00", "tz": "Mars/Olympus"},
        {"time": "08:00", "days": "someday"},
    ):
        bad = await env.command("digest schedule", options)
        assert is_ephemeral(data(bad))
        assert data(bad)["content"].startswith("⚠️ ")
        assert (await env.app.storage.channel_by_id(record.id)).digest_time is None

    ok = await env.command(
        "digest schedule", {"time": "8:30", "tz": "Asia/Shanghai", "days": "mon-fri"}
    )
    assert is_ephemeral(data(ok))
    assert "Digest scheduled at 08:30 \\(Asia/Shanghai\\), on mon-fri" in data(ok)["content"]
    saved = await env.app.storage.channel_by_id(record.id)
    assert (saved.digest_time, saved.timezone, saved.digest_days) == (
        "08:30",
        "Asia/Shanghai",
        "mon-fri",
    )
    off = await env.command("digest off")
    assert "Scheduled digest turned off" in data(off)["content"]
    assert (await env.app.storage.channel_by_id(record.id)).digest_time is None


async def test_digest_now_posts_to_the_channel_and_answers_privately(
    discord_env: DiscordEnv,
) -> None:
    env = discord_env
    await env.seed(["Xi Jinping and Biden agree to resume military talks"])
    inter = await env.command("digest now")
    assert is_ephemeral(data(inter))
    assert data(inter)["content"].startswith("Digest posted \\(1 story")
    channel = env.channel()
    posted = [m for m in env.fake.channel_messages(channel.id) if m.get("nonce")]
    assert len(posted) == 1
    assert posted[0]["embeds"][0]["title"] == "Digest"
    record = await env.channel_record()
    assert record.last_digest_at == NOW


async def test_feeds_add_defers_fetches_and_follows_up(discord_env: DiscordEnv) -> None:
    env = discord_env
    url = env.feeds.feed(
        "/harbor.xml",
        rss([{"title": "Harbor news", "link": "https://h.example/1"}], title="Harbor Wire"),
    )
    inter = await env.command("feeds add", {"url": url})
    assert inter.callback.json == {"type": 5, "data": {"flags": EPHEMERAL}}
    (answer,) = await followups(env, inter)
    assert answer.json["content"].startswith("Added Harbor Wire: 1 item")
    assert env.feeds.requests["/harbor.xml"]  # it was fetched to check it
    record = await env.channel_record()
    assert url in [f.url for f in await env.app.storage.channel_feeds(record.id)]

    listed = await env.command("feeds list", user=env.fake.reader)
    assert "Harbor Wire" in data(listed)["content"]

    bad = await env.command("feeds add", {"url": env.feeds.url("/missing.xml")})
    (answer,) = await followups(env, bad)
    assert answer.json["content"].startswith("⚠️ Not added:")
    assert is_ephemeral(bad.callback.json["data"])
    assert len(await env.app.storage.channel_feeds(record.id)) == 3

    removed = await env.command("feeds remove", {"feed": "Harbor Wire"})
    assert "Removed Harbor Wire" in data(removed)["content"]
    assert len(await env.app.storage.channel_feeds(record.id)) == 2


async def test_feeds_export_is_an_opml_file(discord_env: DiscordEnv) -> None:
    inter = await discord_env.command("feeds export", user=discord_env.fake.reader)
    cb = inter.callback
    assert cb.content_type.startswith("multipart/form-data")
    assert is_ephemeral(cb.json["data"])
    (upload,) = cb.files
    assert upload.filename == "briefbot-feeds.opml"
    assert b'xmlUrl="https://wire.example/rss"' in upload.data
    assert b'xmlUrl="https://other.example/rss"' in upload.data


async def _import(
    env: DiscordEnv,
    opml_url: str,
    size: int,
    *,
    user: Any = None,
    filename: str = "subscriptions.opml",
    content_type: str = "text/x-opml",
) -> Any:
    """/feeds import with an attachment (built by hand: the fake's option builder has no
    attachment type; Discord sends the file in ``resolved.attachments``)."""
    fake = env.fake
    cmd = fake.find_command("feeds", None)
    att_id = fake.ids.next()
    guild = fake.guild_list[0]
    payload = {
        "id": cmd["id"],
        "name": "feeds",
        "type": 1,
        "options": [
            {
                "name": "import",
                "type": 1,
                "options": [{"name": "file", "type": 11, "value": str(att_id)}],
            }
        ],
        "resolved": {
            "attachments": {
                str(att_id): {
                    "id": str(att_id),
                    "filename": filename,
                    "size": size,
                    "url": opml_url,
                    "proxy_url": opml_url,
                    "content_type": content_type,
                }
            }
        },
    }
    inter = await fake._deliver(
        APPLICATION_COMMAND,
        payload,
        guild_id=guild.id,
        channel_id=env.channel().id,
        user=user or fake.admin,
        permissions=None,
        locale="en-US",
        dm=False,
    )
    inter.command_name = "feeds import"
    await inter.wait_response()
    return inter


async def test_feeds_import_reads_the_attachment(discord_env: DiscordEnv) -> None:
    env = discord_env
    one = env.feeds.feed(
        "/one.xml", rss([{"title": "a", "link": "https://a.example/1"}], title="One")
    )
    two = env.feeds.feed(
        "/two.xml", rss([{"title": "b", "link": "https://b.example/1"}], title="Two")
    )
    opml = (
        '<?xml version="1.0"?><opml version="2.0"><head><title>mine</title></head><body>'
        f'<outline text="One" xmlUrl="{one}"/><outline text="Two" xmlUrl="{two}"/>'
        f'<outline text="Dead" xmlUrl="{env.feeds.url("/dead.xml")}"/>'
        "</body></opml>"
    ).encode()
    opml_url = env.feeds.feed("/subs.opml", opml, content_type="text/x-opml")
    inter = await _import(env, opml_url, len(opml))
    assert inter.callback.json == {"type": 5, "data": {"flags": EPHEMERAL}}
    (answer,) = await followups(env, inter)
    assert answer.json["content"].startswith("Imported 2 of 3 feeds.")
    assert "Dead" in answer.json["content"]
    record = await env.channel_record()
    urls = [f.url for f in await env.app.storage.channel_feeds(record.id)]
    assert one in urls
    assert two in urls

    # too big: refused before it is downloaded, nothing changes
    env.feeds.requests.clear()
    big = await _import(env, opml_url, 5_000_000)
    (answer,) = await followups(env, big)
    assert answer.json["content"].startswith("⚠️ file: subscriptions.opml is 5000 kB")
    assert "/subs.opml" not in env.feeds.requests
    # a reader may not import
    denied = await _import(env, opml_url, len(opml), user=env.fake.reader)
    (answer,) = await followups(env, denied)
    assert answer.json["content"] == "⚠️ " + MANAGE_DENIED
    assert len(await env.app.storage.channel_feeds(record.id)) == len(urls)


async def test_bad_input_is_a_private_clear_answer_and_changes_nothing(
    discord_env: DiscordEnv,
) -> None:
    env = discord_env
    storage = env.app.storage
    await env.seed(["Export controls tightened on chips"])
    record = await env.channel_record()

    async def state() -> tuple[Any, ...]:
        channel = await storage.channel_by_id(record.id)
        return (
            await storage.channel_entries(record.id),
            await storage.disabled_entries(record.id),
            [f.url for f in await storage.channel_feeds(record.id)],
            sorted(f.url for f in await storage.all_feeds()),
            (channel.digest_time, channel.paused_reason, channel.last_digest_at),
        )

    before = await state()
    cases: list[tuple[str, dict[str, Any], str]] = [
        ("untrack", {"entry": "nobody at all"}, "No watchlist entry 'nobody at all'"),
        ("feeds remove", {"feed": "Nonexistent Gazette"}, "This channel has no feed"),
        ("search", {"query": "?!* ()"}, "Give at least one word to search for"),
        ("help", {"command": "frobnicate"}, "unknown command /frobnicate"),
    ]
    for name, options, expected in cases:
        inter = await env.command(name, options, user=env.fake.admin)
        payload = data(inter)
        assert inter.callback.json["type"] == 4, name
        assert is_ephemeral(payload), name
        assert payload["content"].startswith("⚠️ "), name
        assert expected in payload["content"], (name, payload["content"])
        assert "went wrong" not in payload["content"], name  # not treated as a bug
        assert "embeds" not in payload, name
    # a search with FTS syntax in it is just words, not an error
    odd = await env.command("search", {"query": 'export AND "controls* NEAR('})
    assert not data(odd)["content"].startswith("⚠️ ")

    # /feeds import with an attachment that is not OPML
    for path, body, ctype, expected in (
        ("/notes.html", b"<html><body>my feeds</body></html>", "text/html", "not an OPML file"),
        (
            "/feeds.txt",
            b"https://a.example/rss\nhttps://b.example/rss\n",
            "text/plain",
            "not a valid OPML file",
        ),
    ):
        url = env.feeds.feed(path, body, content_type=ctype)
        inter = await _import(env, url, len(body), filename=path.lstrip("/"), content_type=ctype)
        assert inter.callback.json == {"type": 5, "data": {"flags": EPHEMERAL}}
        (answer,) = await followups(env, inter)
        assert is_ephemeral(answer.json)
        assert answer.json["content"].startswith("⚠️ "), answer.json["content"]
        assert expected in answer.json["content"]
    assert await state() == before


# -- timing: the 3-second window ----------------------------------------------------


@pytest.mark.usefixtures("fast_shards")
async def test_commands_answer_at_once_while_every_feed_hangs(
    fake_discord: Any, tmp_path: Any, feed_site: Any
) -> None:
    slow = feed_site.slow("/slow.xml", rss([{"title": "late"}]), delay=20)
    sources = [FeedSource(slow, "Slow Wire"), FeedSource("http://127.0.0.1:9/rss", "Dead")]
    env = await start_discord_env(fake_discord, tmp_path, feed_site, sources=sources)
    poll = asyncio.create_task(env.app.poller.poll_once())
    try:
        for _ in range(100):  # the poll is under way, waiting on the slow feed
            if feed_site.requests["/slow.xml"]:
                break
            await asyncio.sleep(0.02)
        assert feed_site.requests["/slow.xml"]
        loop = asyncio.get_running_loop()
        for name in ("brief", "digest now", "status"):
            start = loop.time()
            inter = await env.command(name)
            assert inter.callback.json["type"] == 4, name  # answered, not deferred
            assert loop.time() - start < 1.0, name
        assert not poll.done()
    finally:
        poll.cancel()
        await asyncio.gather(poll, return_exceptions=True)
        await stop_discord_env(env)


async def test_a_slow_briefing_is_deferred_visibly_then_posted(discord_env: DiscordEnv) -> None:
    env = discord_env
    env.bot.runner.defer_after = 0.05
    service = env.app.service
    original = service.brief

    async def slow_brief(*args: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(0.3)
        return await original(*args, **kwargs)

    service._handlers["brief"] = slow_brief
    inter = await env.command("brief")
    assert inter.callback.json == {"type": 5}  # visible "thinking…"
    (answer,) = await followups(env, inter)
    assert answer.json["embeds"][0]["title"] == "Brief"
    assert not is_ephemeral(answer.json)

    # a private answer after a visible defer: the placeholder goes, the answer is private
    bad = await env.command("brief", {"entry": "nobody"})
    assert bad.callback.json == {"type": 5}
    hook = rf"/webhooks/{env.fake.application_id}/{bad.token}/messages/@original"
    await env.fake.wait_for_request("PATCH", hook)
    await env.fake.wait_for_request("DELETE", hook)
    (answer,) = await followups(env, bad)
    assert is_ephemeral(answer.json)
    assert answer.json["content"].startswith("⚠️ No watchlist entry")
    original_id = bad.original_message_id
    assert original_id not in [int(m["id"]) for m in env.fake.channel_messages(env.channel().id)]


# -- errors ---------------------------------------------------------------------------


async def test_a_bug_is_logged_and_the_user_gets_a_short_apology(
    discord_env: DiscordEnv, caplog: pytest.LogCaptureFixture
) -> None:
    env = discord_env

    async def broken(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("secret internals")

    env.app.service._handlers["status"] = broken
    with caplog.at_level(logging.ERROR, logger="bot.adapters.discord"):
        inter = await env.command("status")
    content = data(inter)["content"]
    assert is_ephemeral(data(inter))
    assert content.startswith("⚠️ Sorry, something went wrong")
    assert "secret internals" not in content
    assert "Traceback" not in content
    logged = [r for r in caplog.records if r.exc_info]
    assert logged
    assert "secret internals" in str(logged[0].exc_info[1])


async def test_a_command_in_a_dm_gets_a_clear_private_message(discord_env: DiscordEnv) -> None:
    inter = await discord_env.fake.send_interaction("brief", {}, dm=True)
    await inter.wait_response()
    assert is_ephemeral(data(inter))
    assert "server's text channel" in data(inter)["content"]


async def test_stopping_closes_cleanly(discord_env: DiscordEnv) -> None:
    env = discord_env
    assert env.app.sinks["discord"] is env.bot.sink
    await stop_discord_env(env, close_app=False)
    assert "discord" not in env.app.sinks
    sessions = list(env.fake.gateway.shard_sessions.values())
    for _ in range(100):
        if all(s.conn is None for s in sessions):
            break
        await asyncio.sleep(0.01)
    assert [s.resumable for s in sessions] == [False, False]  # closed with 1000
    # the fixture's stop is then a no-op on the finished task
    assert env.task.done()


async def test_stopping_lets_a_command_being_answered_finish(discord_env: DiscordEnv) -> None:
    env = discord_env
    env.bot.runner.defer_after = 0.05
    original = env.app.service.brief

    async def slow_brief(*args: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(0.4)
        return await original(*args, **kwargs)

    env.app.service._handlers["brief"] = slow_brief
    inter = await env.fake.send_interaction(
        "brief", {}, guild_id=env.fake.guild_list[0].id, user=env.fake.reader
    )
    assert (await inter.wait_response()).json == {"type": 5}
    env.task.cancel()  # shutting down while the brief is being made
    with contextlib.suppress(asyncio.CancelledError):
        await env.task
    (answer,) = env.fake.requests("POST", rf"/webhooks/{env.fake.application_id}/{inter.token}")
    assert answer.status == 200
    assert answer.json["embeds"][0]["title"] == "Brief"
    assert env.client.is_closed()


async def test_stopping_during_a_gateway_outage_is_prompt(discord_env: DiscordEnv) -> None:
    """Stopping while the shards try to reconnect (the gateway does not answer): discord.py
    swallows a cancellation that lands while a shard resumes; the bot still stops."""
    env = discord_env
    fake = env.fake
    fake.hold_gateway()
    connects = len(fake.gateway_connects)
    assert fake.drop_gateway() == 2
    for _ in range(200):  # a shard is reconnecting, waiting for HELLO
        if len(fake.gateway_connects) > connects:
            break
        await asyncio.sleep(0.01)
    assert len(fake.gateway_connects) > connects
    env.task.cancel()
    done, _ = await asyncio.wait({env.task}, timeout=5)
    assert env.task in done, "the bot did not stop during the gateway outage"
    assert env.task.cancelled()
    assert env.client.is_closed()
    assert "discord" not in env.app.sinks
    assert not fake.resume_log  # it never got back in
