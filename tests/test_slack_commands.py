"""/briefbot against the real Bolt app on loopback (signed requests built here, Bolt's own
signature check): every subcommand, the 3-second acknowledgement, ephemeral vs in-channel
answers, menus, modals and options requests, an admin and a plain member."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from fakeslack import FakeSlack, sign
from fakeslack.harness import SlackEnv, start_slack_env, stop_slack_env
from fakeslack.signing import select, text_input
from feedserver import FeedServer, rss

pytest_plugins = ["fakeslack.pytest_plugin"]


def texts(message: dict[str, Any]) -> str:
    out = []
    for b in message.get("blocks") or []:
        if "text" in b:
            out.append(b["text"]["text"])
        out.extend(e.get("text", "") for e in b.get("elements", []) if isinstance(e, dict))
    return "\n".join(out)


def everything(env: SlackEnv, answer: Any) -> str:
    return "\n".join(texts(m) for m in env.responses(answer))


@pytest.fixture
async def feeds() -> AsyncIterator[FeedServer]:
    async with FeedServer() as server:
        yield server


@pytest.fixture
async def env(fake_slack: FakeSlack, tmp_path: Path, feeds: FeedServer) -> AsyncIterator[SlackEnv]:
    env = await start_slack_env(fake_slack, tmp_path, feeds_port=feeds.port, managers=("UMANAGER",))
    try:
        yield env
    finally:
        await stop_slack_env(env)
    assert not fake_slack.invalid, f"Slack would refuse: {fake_slack.invalid}"


def test_text_is_read_as_typed_links_and_entities_unwrapped() -> None:
    from bot.adapters.slack.commands import parse_text, unslack

    assert unslack("feeds add <https://a.example/rss?x=1&amp;y=2|a.example/rss>") == (
        "feeds add https://a.example/rss?x=1&y=2"
    )
    spec, args = parse_text('track kind:topic name:"AT&amp;T" aliases:"&lt;AT&gt;"')
    assert spec.name == "track"
    assert (args["name"], args["aliases"]) == ("AT&T", "<AT>")
    assert parse_text("")[0].name == "help"
    assert parse_text("/briefbot digest now")[0].name == "digest now"


# -- requests: signatures, url_verification ----------------------------------------------


async def test_unsigned_wrongly_signed_and_stale_requests_are_refused_with_no_effect(
    env: SlackEnv,
) -> None:
    env.fake.calls.clear()  # the start-up auth.test
    body, url, _ = env.slack.command_body('track kind:actor name:"Li Qiang"')
    unsigned = await env.slack.post(body, "application/x-www-form-urlencoded", signed=False)
    wrong = await env.slack.post(
        body,
        "application/x-www-form-urlencoded",
        signed=False,
        headers={
            "X-Slack-Request-Timestamp": str(int(time.time())),
            "X-Slack-Signature": "v0=" + "0" * 64,
        },
    )
    stale = await env.slack.post(
        body, "application/x-www-form-urlencoded", timestamp=int(time.time()) - 6 * 60
    )
    tampered_body = body.replace("Li+Qiang", "Xi")
    tampered = await env.slack.post(
        tampered_body,
        "application/x-www-form-urlencoded",
        headers=sign(env.slack.secret, body),  # the signature of another body
        signed=False,
    )
    for answer in (unsigned, wrong, stale, tampered):
        assert answer.status == 401
    await env.settle()
    assert env.fake.response_posts(url) == []
    assert env.fake.calls == []  # not even users.info
    assert await env.app.storage.all_channels("slack") == []


async def test_url_verification_echoes_the_challenge(env: SlackEnv) -> None:
    answer = await env.slack.event(
        {
            "token": "x",
            "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P",
            "type": "url_verification",
        }
    )
    assert answer.status == 200
    assert "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P" in answer.text


# -- reading commands --------------------------------------------------------------------


async def test_help_and_empty_text_are_ephemeral_help(env: SlackEnv) -> None:
    for text in ("help", "", "  "):
        answer = await env.command(text)
        body = answer.json
        assert body["response_type"] == "ephemeral"
        shown = texts(body)
        assert "/briefbot brief" in shown
        assert "/briefbot feeds add" in shown
        assert "/brief " not in shown.replace("/briefbot brief", "")
        assert "Manage Server" not in shown
        assert "needs a workspace admin or owner" in shown
    detail = await env.command("help digest")
    assert "/briefbot digest schedule" in texts(detail.json)


async def test_brief_is_posted_in_the_channel_as_blocks(env: SlackEnv) -> None:
    await env.seed(["Wang Yi meets Blinken in Washington", "Local bakery wins a prize"])
    answer = await env.command("brief hours:24", user="UMEMBER")
    messages = env.responses(answer)
    assert messages[0]["response_type"] == "in_channel"
    shown = everything(env, answer)
    assert "Wang Yi meets Blinken in Washington" in shown
    assert "bakery" not in shown
    assert "<!date^1700042400^" in shown  # NOW - 2 h, each reader's own time zone
    assert all("link_names" not in m for m in messages)
    assert all(m["unfurl_links"] is False and m["unfurl_media"] is False for m in messages)
    assert messages[0]["text"].startswith("Brief: 1 story")


async def test_search_watchlist_status_test_and_feeds_list(env: SlackEnv) -> None:
    await env.seed(["Wang Yi meets Blinken in Washington"])
    search = await env.command('search "Wang Yi"', user="UMEMBER")
    assert env.responses(search)[0]["response_type"] == "in_channel"
    assert "Wang Yi meets Blinken" in everything(env, search)
    for text, expected in (
        ("watchlist", "Wang Yi"),
        ("status", "Feeds: 2"),
        ('test text:"Wang Yi flies to Moscow"', "Wang Yi"),
        ("feeds list", "Wire"),
    ):
        answer = await env.command(text, user="UMEMBER")
        (message,) = env.responses(answer)
        assert message["response_type"] == "ephemeral", text
        assert expected in texts(message), text


async def test_bad_input_and_unknown_subcommands_answer_privately_with_usage(
    env: SlackEnv,
) -> None:
    answer = await env.command("brief hours:lots")
    (message,) = env.responses(answer)
    assert message["response_type"] == "ephemeral"
    assert texts(message).startswith("⚠️ hours must be a whole number")
    assert "Usage: /briefbot brief" in texts(message)
    unknown = await env.command("frobnicate")
    assert "unknown command /frobnicate; try /briefbot help" in texts(unknown.json)
    typo = await env.command('track kind:actor name:"Li Qiang" alias:"Premier Li"')
    assert "did you mean aliases:?" in texts(typo.json)
    assert await env.app.storage.channel_entries((await env.channel_record()).id) == []


async def test_slow_work_is_acknowledged_empty_then_answered_through_response_url(
    env: SlackEnv,
) -> None:
    env.bot.commands.ack_within = 0.0
    await env.seed(["Wang Yi meets Blinken in Washington"])
    answer = await env.command("brief 24")
    assert answer.status == 200
    assert answer.text == ""  # acknowledged at once, nothing in the body
    posts = env.fake.response_posts(answer.response_url)
    assert posts[0]["response_type"] == "in_channel"
    assert "Wang Yi meets Blinken" in texts(posts[0])
    status = await env.command("status")
    (message,) = env.fake.response_posts(status.response_url)
    assert message["response_type"] == "ephemeral"


async def test_commands_in_a_direct_message_are_refused(env: SlackEnv) -> None:
    env.fake.channels.pop("D0DM", None)
    answer = await env.command("status", channel="D0DM")
    assert "not in direct messages" in texts(answer.json)


# -- changing the setup: permissions -------------------------------------------------------


async def test_track_untrack_by_an_admin_and_refused_to_a_member(env: SlackEnv) -> None:
    record = await env.channel_record()
    refused = await env.command('track kind:actor name:"Li Qiang"', user="UMEMBER")
    assert refused.json["response_type"] == "ephemeral"
    assert "needs a workspace admin or owner" in texts(refused.json)
    assert await env.app.storage.channel_entries(record.id) == []

    tracked = await env.command(
        'track kind:actor name:"Li Qiang" aliases:"Premier Li"', user="UADMIN"
    )
    assert texts(tracked.json).startswith("Tracking Li Qiang (actor, id li-qiang)")
    assert [e.entry_id for e in await env.app.storage.channel_entries(record.id)] == ["li-qiang"]
    owner = await env.command("digest group by:story", user="UOWNER")
    assert "story" in texts(owner.json)
    manager = await env.command("untrack li-qiang", user="UMANAGER")  # [slack] managers
    assert "Stopped tracking Li Qiang" in texts(manager.json)
    assert await env.app.storage.channel_entries(record.id) == []
    # users.info asked once per user (cached), never for a listed manager
    asked = [c.args["user"] for c in env.fake.called("users.info")]
    assert sorted(asked) == ["UADMIN", "UMEMBER", "UOWNER"]


async def test_member_may_not_schedule_remove_feeds_or_open_the_modals(env: SlackEnv) -> None:
    record = await env.channel_record()
    for text in (
        "digest schedule time:09:00",
        "digest off",
        "feeds remove 1",
        "track",
        "digest schedule",
        "feeds import",
        "untrack",
        "feeds remove",
    ):
        answer = await env.command(text, user="UMEMBER")
        assert "needs a workspace admin or owner" in texts(answer.json), text
    assert env.fake.views == []
    after = await env.app.storage.channel_by_id(record.id)
    assert after.digest_time is None
    assert len(await env.app.storage.channel_feeds(record.id)) == 2


# -- interactivity -------------------------------------------------------------------------


async def test_track_without_arguments_opens_a_modal_whose_submission_tracks(
    env: SlackEnv,
) -> None:
    answer = await env.command("track")
    assert answer.text == ""
    (opened,) = env.fake.views
    assert opened["trigger_id"] == answer.trigger_id
    view = opened["view"]
    assert view["callback_id"] == "briefbot_track"
    assert [b["block_id"] for b in view["blocks"]] == ["kind", "name", "aliases", "mode"]

    bad = await env.slack.submit(
        view,
        {
            "kind": select("actor"),
            "name": text_input("x" * 101),
            "aliases": text_input(""),
            "mode": select("digest"),
        },
    )
    assert bad.json["response_action"] == "errors"
    assert "name" in bad.json["errors"]

    ok = await env.slack.submit(
        view,
        {
            "kind": select("topic"),
            "name": text_input("Rare earths"),
            "aliases": text_input("rare-earth, REE"),
            "mode": select("instant"),
        },
    )
    assert ok.status == 200
    assert ok.text == ""
    await env.settle()
    (done,) = env.fake.response_posts(answer.response_url)
    assert done["response_type"] == "ephemeral"
    assert texts(done).startswith("Tracking Rare earths (topic, id rare-earths)")
    record = await env.channel_record()
    (entry,) = await env.app.storage.channel_entries(record.id)
    assert (entry.entry_id, entry.mode) == ("rare-earths", "instant")

    # a member submitting the same modal (a forged or stale view) changes nothing
    refused = await env.slack.submit(
        view,
        {
            "kind": select("actor"),
            "name": text_input("Someone Else"),
        },
        user="UMEMBER",
    )
    assert refused.json["response_action"] == "errors"
    assert len(await env.app.storage.channel_entries(record.id)) == 1


async def test_untrack_brief_and_feeds_remove_without_argument_answer_with_a_menu(
    env: SlackEnv,
) -> None:
    await env.command('track kind:actor name:"Li Qiang"')
    menu = await env.command("untrack")
    message = menu.json
    assert message["response_type"] == "ephemeral"
    (actions,) = [b for b in message["blocks"] if b["type"] == "actions"]
    values = [o["value"] for o in actions["elements"][0]["options"]]
    assert {"li-qiang", "wang-yi"} <= set(values)
    picked = await env.slack.pick(message, "li-qiang", response_url=menu.response_url)
    assert picked.status == 200
    await env.settle()
    (done,) = env.fake.response_posts(menu.response_url)
    assert done["replace_original"] is True
    assert "Stopped tracking Li Qiang" in texts(done)

    await env.seed(["Wang Yi meets Blinken in Washington"])
    brief_menu = await env.command("brief", user="UMEMBER")
    options = [
        o["value"]
        for b in brief_menu.json["blocks"]
        if b["type"] == "actions"
        for o in b["elements"][0]["options"]
    ]
    assert options[0] == "*"
    await env.slack.pick(
        brief_menu.json, "wang-yi", user="UMEMBER", response_url=brief_menu.response_url
    )
    await env.settle()
    posts = env.fake.response_posts(brief_menu.response_url)
    assert posts[0]["response_type"] == "in_channel"
    assert "Wang Yi meets Blinken" in texts(posts[0])
    assert posts[-1] == {"delete_original": True}

    feeds_menu = await env.command("feeds remove")
    feed_values = [
        o["value"]
        for b in feeds_menu.json["blocks"]
        if b["type"] == "actions"
        for o in b["elements"][0]["options"]
    ]
    assert sorted(feed_values) == ["https://other.example/rss", "https://wire.example/rss"]
    await env.slack.pick(
        feeds_menu.json, "https://other.example/rss", response_url=feeds_menu.response_url
    )
    await env.settle()
    record = await env.channel_record()
    assert [f.url for f in await env.app.storage.channel_feeds(record.id)] == [
        "https://wire.example/rss"
    ]
    # a member choosing in an admin's menu changes nothing
    again = await env.command("feeds remove")
    await env.slack.pick(
        again.json, "https://wire.example/rss", user="UMEMBER", response_url=again.response_url
    )
    await env.settle()
    assert "needs a workspace admin" in texts(env.fake.response_posts(again.response_url)[0])
    assert len(await env.app.storage.channel_feeds(record.id)) == 1


async def test_schedule_modal_searches_time_zones_and_sets_the_schedule(env: SlackEnv) -> None:
    answer = await env.command("digest schedule")
    (opened,) = env.fake.views
    view = opened["view"]
    assert view["callback_id"] == "briefbot_schedule"
    tz = next(b for b in view["blocks"] if b["block_id"] == "tz")
    assert tz["element"]["type"] == "external_select"

    options = await env.slack.options("tz", "shang", view)
    assert options.status == 200
    found = [o["value"] for o in options.json["options"]]
    assert "Asia/Shanghai" in found
    assert all("shang" in v.lower() for v in found)

    submitted = await env.slack.submit(
        view,
        {
            "time": text_input("08:30"),
            "tz": select("Asia/Shanghai", kind="external_select", action="tz"),
            "days": text_input("mon-fri"),
        },
    )
    assert submitted.text == ""
    await env.settle()
    (done,) = env.fake.response_posts(answer.response_url)
    assert done["response_type"] == "ephemeral"
    record = await env.channel_record()
    assert (record.digest_time, record.timezone, record.digest_days) == (
        "08:30",
        "Asia/Shanghai",
        "mon-fri",
    )
    bad = await env.slack.submit(view, {"time": text_input("25:99")})
    assert bad.json["response_action"] == "errors"
    assert "time" in bad.json["errors"]


async def test_feeds_add_import_and_export(env: SlackEnv, feeds: FeedServer) -> None:
    one = feeds.feed("/one.xml", rss([{"title": "a", "link": "https://a.example/1"}], title="One"))
    two = feeds.feed("/two.xml", rss([{"title": "b", "link": "https://b.example/1"}], title="Two"))
    added = await env.command(f"feeds add <{one}>")  # Slack sends links as <url>
    assert "One" in everything(env, added)
    record = await env.channel_record()
    assert one in [f.url for f in await env.app.storage.channel_feeds(record.id)]

    # import: a modal with a file input; the file is read from Slack with the bot token
    answer = await env.command("feeds import")
    (opened,) = env.fake.views
    view = opened["view"]
    assert view["blocks"][0]["element"]["type"] == "file_input"
    opml = (
        '<?xml version="1.0"?><opml version="2.0"><head><title>mine</title></head><body>'
        f'<outline text="Two" xmlUrl="{two}"/>'
        f'<outline text="Dead" xmlUrl="{feeds.url("/dead.xml")}"/>'
        "</body></opml>"
    ).encode()
    too_big = {**env.fake.add_file("huge.opml", b"x"), "size": 5_000_000}
    refused = await env.slack.submit(
        view, {"file": {"value": {"type": "file_input", "files": [too_big]}}}
    )
    assert refused.json["response_action"] == "errors"
    assert refused.json["errors"]["file"].startswith("file: huge.opml is 5000 kB")
    file = env.fake.add_file("subs.opml", opml)
    submitted = await env.slack.submit(
        view, {"file": {"value": {"type": "file_input", "files": [file]}}}
    )
    assert submitted.status == 200
    await env.settle()
    (done,) = env.fake.response_posts(answer.response_url)
    assert texts(done).startswith("Imported 1 of 2 feeds.")
    assert two in [f.url for f in await env.app.storage.channel_feeds(record.id)]

    # export: the OPML file uploaded to the channel (files.uploadV2)
    exported = await env.command("feeds export", user="UMEMBER")
    assert exported.status == 200
    (upload,) = env.fake.uploads
    assert upload["channel"] == "C0GENERAL"
    assert upload["filename"] == "briefbot-feeds.opml"
    assert f'xmlUrl="{two}"'.encode() in upload["content"]
    assert b'xmlUrl="https://wire.example/rss"' in upload["content"]


async def test_digest_now_and_off(env: SlackEnv) -> None:
    await env.seed(["Xi Jinping and Biden agree to resume military talks"])
    # posting moves the next digest's start: an admin's; a member gets a preview
    answer = await env.command("digest now", user="UADMIN")
    assert everything(env, answer).startswith("Digest posted (1 story")
    (posted,) = env.fake.posted("C0GENERAL")
    assert "Xi Jinping and Biden agree" in texts({"blocks": posted.blocks})
    await env.command("digest schedule time:07:00")
    off = await env.command("digest off")
    assert "Scheduled digest turned off" in everything(env, off)


async def test_a_bug_is_logged_and_the_user_sees_a_short_apology(
    env: SlackEnv, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("database on fire")

    monkeypatch.setattr(env.bot.commands.service, "dispatch", broken)
    answer = await env.command("status")
    (message,) = env.responses(answer)
    assert message["response_type"] == "ephemeral"
    assert texts(message).startswith("Sorry, something went wrong on Briefbot's side.")
    assert "database on fire" not in texts(message)
    assert "database on fire" in caplog.text


async def test_admin_flags_are_cached_briefly(env: SlackEnv) -> None:
    from bot.adapters.slack.app import web_client
    from bot.adapters.slack.respond import Permissions

    now = [0.0]
    perms = Permissions(["UMANAGER"], ttl=60, clock=lambda: now[0])
    client = web_client(env.fake.api_base, env.fake.bot_token)
    env.fake.calls.clear()
    assert await perms.can_manage(client, "T0TEAM", "UADMIN")
    assert await perms.can_manage(client, "T0TEAM", "UADMIN")
    assert not await perms.can_manage(client, "T0TEAM", "UMEMBER")
    assert await perms.can_manage(client, "T0TEAM", "UMANAGER")
    assert len(env.fake.called("users.info")) == 2
    env.fake.users["UADMIN"]["is_admin"] = False  # demoted: seen once the cache expires
    now[0] = 61
    assert not await perms.can_manage(client, "T0TEAM", "UADMIN")
    assert not await perms.can_manage(client, "T0TEAM", "UNOBODY")  # user_not_found: no


async def test_a_briefing_longer_than_a_response_url_takes_goes_on_in_the_channel(
    env: SlackEnv,
) -> None:
    from datetime import timedelta

    from factories import E, digest_of, mi

    from bot.adapters.slack.app import web_client
    from bot.core.models import EntryKind
    from bot.core.replies import ChannelContext, Reply

    xi = E("xi", EntryKind.ACTOR, "Xi Jinping")
    items = [
        mi(
            i,
            f"Xi Jinping w{i}a w{i}b w{i}c",
            hits=[("xi", "Xi Jinping", "title")],
            at=timedelta(minutes=i),
        )
        for i in range(1, 231)
    ]
    digest = digest_of(items, {"xi": xi}, max_stories=230)
    url = env.fake.response_url()
    ctx = ChannelContext(platform="slack", channel_id="C0GENERAL", guild_id="T0TEAM")
    client = web_client(env.fake.api_base, env.fake.bot_token)
    reply = Reply(digest=digest, ephemeral=False)
    await env.bot.commands.answer(url, client, ctx, reply, visible=True)
    through_url = env.fake.response_posts(url)
    assert len(through_url) == 4
    assert all(p["response_type"] == "in_channel" for p in through_url)
    rest = env.fake.posted("C0GENERAL")
    assert len(rest) >= 1
    assert all(m.args["unfurl_links"] is False for m in rest)
