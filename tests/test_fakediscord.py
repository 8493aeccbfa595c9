"""The fake Discord, proven with the real discord.py client (AutoShardedClient + CommandTree)."""

from __future__ import annotations

import asyncio
import io
from dataclasses import dataclass, field
from typing import Any

import discord
import pytest
from discord import app_commands
from discord.gateway import DiscordWebSocket
from discord.http import Route
from fakediscord import FakeDiscord, fast_client_options, faults, redirect_discord
from fakediscord.client import RunClient
from fakediscord.models import MANAGE_GUILD, SEND_MESSAGES, VIEW_CHANNEL, Overwrite

pytestmark = pytest.mark.filterwarnings("error")

TOPICS = ["china", "chile", "climate", "cyber"]


@dataclass
class Bot:
    client: discord.AutoShardedClient
    tree: app_commands.CommandTree[discord.AutoShardedClient]
    seen: dict[str, Any] = field(default_factory=dict)
    messages: list[discord.Message] = field(default_factory=list)
    resumed: list[int] = field(default_factory=list)
    shard_ready: list[int] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)


def build_bot(**options: Any) -> Bot:
    client = discord.AutoShardedClient(
        intents=discord.Intents.default(), **fast_client_options(**options)
    )
    tree = app_commands.CommandTree(client)
    bot = Bot(client, tree)

    @tree.command(name="brief", description="Brief on a topic")
    @app_commands.describe(topic="what to brief on")
    async def brief(interaction: discord.Interaction, topic: str) -> None:
        bot.seen["brief"] = {
            "topic": topic,
            "guild_id": interaction.guild_id,
            "channel_id": interaction.channel_id,
            "user_id": interaction.user.id,
            "manage_guild": interaction.permissions.manage_guild,
            "locale": str(interaction.locale),
        }
        if not interaction.permissions.manage_guild:
            await interaction.response.send_message("You need Manage Server.", ephemeral=True)
            return
        await interaction.response.send_message(f"Briefing on {topic}")

    @brief.autocomplete("topic")
    async def topic_choices(
        _interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return [
            app_commands.Choice(name=t.title(), value=t) for t in TOPICS if t.startswith(current)
        ]

    watch = app_commands.Group(name="watch", description="Manage the watchlist")
    actor = app_commands.Group(name="actor", description="Tracked people", parent=watch)

    @actor.command(name="add", description="Track a person")
    async def actor_add(interaction: discord.Interaction, name: str, priority: int = 1) -> None:
        bot.seen["actor_add"] = (name, priority)
        await interaction.response.defer(thinking=True)
        await interaction.followup.send(f"Tracking {name} (priority {priority})")
        await interaction.followup.send("Second note", ephemeral=True)

    @tree.command(name="report", description="Send the report file")
    async def report(interaction: discord.Interaction) -> None:
        await interaction.response.send_message(
            "Report attached", file=discord.File(io.BytesIO(b"line one\n"), "report.txt")
        )

    @tree.command(name="slow", description="Answers too late")
    async def slow(interaction: discord.Interaction) -> None:
        await asyncio.sleep(0.3)
        try:
            await interaction.response.send_message("late")
        except discord.NotFound as exc:
            bot.errors.append(exc)

    @tree.command(name="status", description="Show status")
    async def status(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("checking feeds")
        await interaction.edit_original_response(content="all feeds healthy")
        bot.seen["status"] = (await interaction.original_response()).content

    @tree.command(name="feedback", description="Send feedback")
    async def feedback(interaction: discord.Interaction) -> None:
        await interaction.response.send_modal(Feedback())

    tree.add_command(watch)

    @client.event
    async def on_message(message: discord.Message) -> None:
        bot.messages.append(message)

    @client.event
    async def on_shard_resumed(shard_id: int) -> None:
        bot.resumed.append(shard_id)

    @client.event
    async def on_shard_ready(shard_id: int) -> None:
        bot.shard_ready.append(shard_id)

    return bot


class Feedback(discord.ui.Modal, title="Feedback"):
    note: discord.ui.TextInput[Feedback] = discord.ui.TextInput(label="Note", custom_id="note")

    def __init__(self) -> None:
        super().__init__(timeout=None, custom_id="feedback-modal")

    async def on_submit(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_message(f"Thanks: {self.note.value}", ephemeral=True)


class Pager(discord.ui.View):
    def __init__(self) -> None:
        super().__init__(timeout=None)

    @discord.ui.button(label="More", custom_id="more")
    async def more(
        self, interaction: discord.Interaction, _button: discord.ui.Button[Pager]
    ) -> None:
        await interaction.response.edit_message(content="page 2")

    @discord.ui.button(label="Ack", custom_id="ack")
    async def ack(
        self, interaction: discord.Interaction, _button: discord.ui.Button[Pager]
    ) -> None:
        await interaction.response.defer()


@pytest.fixture
async def bot(fake_discord: FakeDiscord, run_client: RunClient) -> Bot:
    b = build_bot()
    await run_client(b.client)
    await b.tree.sync()
    return b


async def eventually(check: Any, timeout: float = 5.0) -> None:  # noqa: ASYNC109
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


# -- login, READY, sharding ------------------------------------------------------


async def test_client_logs_in_and_gets_ready_on_two_shards(
    fake_discord: FakeDiscord, run_client: RunClient
) -> None:
    b = build_bot()
    client = await run_client(b.client)

    assert client.user is not None
    assert client.user.id == fake_discord.bot_user.id
    assert client.application_id == fake_discord.application_id
    assert client.shard_count == 2
    assert sorted(b.shard_ready) == [0, 1]
    assert {g.id for g in client.guilds} == set(fake_discord.guilds)
    for guild in client.guilds:
        assert guild.shard_id == (guild.id >> 22) % 2
        assert guild.me is not None
        assert guild.me.id == fake_discord.bot_user.id
        assert [c.name for c in guild.text_channels] == ["general", "news"]
        assert guild.member_count == 4
    assert {g.shard_id for g in client.guilds} == {0, 1}

    # what discord.py sent: REST login with the bot token, then 2 IDENTIFYs
    me = fake_discord.requests("GET", r"/users/@me")[0]
    assert me.header("Authorization") == f"Bot {fake_discord.token}"
    assert (me.header("User-Agent") or "").startswith("DiscordBot (")
    assert [r.path for r in fake_discord.request_log][:3] == [
        "/users/@me",
        "/oauth2/applications/@me",
        "/gateway/bot",
    ]
    assert sorted(i["shard"] for i in fake_discord.identify_log) == [(0, 2), (1, 2)]
    assert all(i["intents"] == discord.Intents.default().value for i in fake_discord.identify_log)
    for connect in fake_discord.gateway_connects:
        assert connect["query"] == {"v": "10", "encoding": "json", "compress": "zlib-stream"}

    # heartbeats flow both ways and latency is measured on every shard
    await fake_discord.wait_for_gateway(op=1, direction="recv")
    await fake_discord.wait_for_gateway(op=11, direction="send")
    await eventually(lambda: all(lat < 1.0 for _, lat in client.latencies))


async def test_redirect_is_scoped_to_the_fixture() -> None:
    default_base, default_gw = Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY
    with redirect_discord("http://127.0.0.1:9/api/v10/", "ws://127.0.0.1:9/gateway"):
        assert Route("GET", "/users/@me").url == "http://127.0.0.1:9/api/v10/users/@me"
        assert str(DiscordWebSocket.DEFAULT_GATEWAY) == "ws://127.0.0.1:9/gateway"
    assert (default_base, default_gw) == (Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY)
    assert Route.BASE == "https://discord.com/api/v10"


@pytest.mark.usefixtures("fake_discord")
async def test_bad_token_is_a_login_failure() -> None:
    client = discord.AutoShardedClient(intents=discord.Intents.default())
    try:
        with pytest.raises(discord.LoginFailure):
            await client.login("not-the-token")
    finally:
        await client.close()


# -- application commands ----------------------------------------------------------


async def test_tree_sync_registers_commands_with_ids(bot: Bot, fake_discord: FakeDiscord) -> None:
    put = await fake_discord.wait_for_request(
        "PUT", rf"/applications/{fake_discord.application_id}/commands"
    )
    assert put.status == 200
    assert sorted(c["name"] for c in put.json) == [
        "brief",
        "feedback",
        "report",
        "slow",
        "status",
        "watch",
    ]
    watch = next(c for c in put.json if c["name"] == "watch")
    assert watch["options"][0]["type"] == 2  # subcommand group "actor"
    assert watch["options"][0]["options"][0]["name"] == "add"

    fetched = await bot.tree.fetch_commands()
    assert {c.name: c.id for c in fetched} == {
        c["name"]: int(c["id"]) for c in fake_discord.global_commands
    }

    # a guild sync goes to the guild route; re-syncing keeps ids
    guild = discord.Object(fake_discord.guild_list[0].id)
    bot.tree.copy_global_to(guild=guild)
    first = await bot.tree.sync(guild=guild)
    again = await bot.tree.sync(guild=guild)
    assert [c.id for c in first] == [c.id for c in again]
    assert fake_discord.requests("PUT", rf"/applications/\d+/guilds/{guild.id}/commands")


async def test_sync_to_unknown_guild_is_forbidden(bot: Bot) -> None:
    with pytest.raises(discord.Forbidden) as info:
        await bot.tree.sync(guild=discord.Object(123456789012345678))
    assert info.value.code == 50001


# -- interactions -------------------------------------------------------------------


async def test_slash_command_runs_and_its_response_arrives(
    bot: Bot, fake_discord: FakeDiscord
) -> None:
    guild = fake_discord.guild_list[1]
    channel = guild.text_channels()[1]
    inter = await fake_discord.send_interaction(
        "brief",
        {"topic": "china"},
        guild_id=guild.id,
        channel_id=channel.id,
        user=fake_discord.admin,
    )
    cb = await inter.wait_response()

    assert cb.path == f"/interactions/{inter.id}/{inter.token}/callback"
    assert cb.header("Content-Type") == "application/json"
    assert cb.json == {"type": 4, "data": {"tts": False, "content": "Briefing on china"}}
    assert cb.status == 200  # discord.py asks with_response=1
    assert cb.query.get("with_response") in ("1", "true")
    assert bot.seen["brief"] == {
        "topic": "china",
        "guild_id": guild.id,
        "channel_id": channel.id,
        "user_id": fake_discord.admin.id,
        "manage_guild": True,
        "locale": "en-US",
    }
    original = fake_discord.messages[inter.original_message_id or 0]
    assert original["content"] == "Briefing on china"
    assert original["type"] == 20


async def test_member_permissions_reach_the_command(bot: Bot, fake_discord: FakeDiscord) -> None:
    inter = await fake_discord.send_interaction(
        "brief", {"topic": "cyber"}, user=fake_discord.reader
    )
    cb = await inter.wait_response()
    assert bot.seen["brief"]["manage_guild"] is False
    assert cb.json["data"]["content"] == "You need Manage Server."
    assert cb.json["data"]["flags"] == 64  # ephemeral

    # an explicit permissions bitfield overrides the member's roles
    inter = await fake_discord.send_interaction(
        "brief",
        {"topic": "cyber"},
        user=fake_discord.reader,
        permissions=MANAGE_GUILD | VIEW_CHANNEL,
    )
    assert (await inter.wait_response()).json["data"]["content"] == "Briefing on cyber"


async def test_deferred_response_then_followups(bot: Bot, fake_discord: FakeDiscord) -> None:
    inter = await fake_discord.send_interaction(
        "watch actor add", {"name": "Xi Jinping", "priority": 3}
    )
    cb = await inter.wait_response()
    assert cb.json == {"type": 5}  # thinking=True in a command: no ephemeral flag
    assert bot.seen["actor_add"] == ("Xi Jinping", 3)

    first = await fake_discord.wait_for_request(
        "POST", rf"/webhooks/{fake_discord.application_id}/{inter.token}"
    )
    assert first.json["content"] == "Tracking Xi Jinping (priority 3)"
    # right after a defer, the first follow-up edits the loading message (Discord's rule)
    assert first.response["id"] == str(inter.original_message_id)
    original = fake_discord.messages[inter.original_message_id or 0]
    assert original["content"] == "Tracking Xi Jinping (priority 3)"
    assert not original["flags"] & 128  # no longer LOADING

    second = await fake_discord.wait_for_request("POST", rf"/webhooks/\d+/{inter.token}")
    assert second.json["content"] == "Second note"
    assert second.json["flags"] == 64
    assert inter.followup_ids == [int(second.response["id"])]


async def test_autocomplete_returns_choices(bot: Bot, fake_discord: FakeDiscord) -> None:
    inter = await fake_discord.send_autocomplete("brief", {"topic": "ch"}, focused="topic")
    cb = await inter.wait_response()
    assert cb.json == {
        "type": 8,
        "data": {
            "choices": [{"name": "China", "value": "china"}, {"name": "Chile", "value": "chile"}]
        },
    }
    assert "brief" not in bot.seen  # autocomplete does not run the command


@pytest.mark.usefixtures("bot")
async def test_interaction_response_with_a_file_is_multipart(fake_discord: FakeDiscord) -> None:
    inter = await fake_discord.send_interaction("report")
    cb = await inter.wait_response()
    assert cb.content_type.startswith("multipart/form-data")
    assert cb.json["type"] == 4
    assert cb.json["data"]["attachments"][0]["filename"] == "report.txt"
    assert [(f.field, f.filename, f.data) for f in cb.files] == [
        ("files[0]", "report.txt", b"line one\n")
    ]
    att = fake_discord.messages[inter.original_message_id or 0]["attachments"][0]
    assert att["filename"] == "report.txt"
    assert att["size"] == 9
    assert att["content_type"] == "text/plain; charset=utf-8"


async def test_late_interaction_response_is_unknown_interaction(
    bot: Bot, fake_discord: FakeDiscord
) -> None:
    fake_discord.interaction_ack_timeout = 0.1  # Discord: 3 s
    inter = await fake_discord.send_interaction("slow")
    await eventually(lambda: bot.errors)
    assert isinstance(bot.errors[0], discord.NotFound)
    assert bot.errors[0].code == 10062
    assert inter.response_type is None


async def test_original_response_is_edited_and_fetched(bot: Bot, fake_discord: FakeDiscord) -> None:
    inter = await fake_discord.send_interaction("status")
    assert (await inter.wait_response()).json["data"]["content"] == "checking feeds"
    hook = rf"/webhooks/{fake_discord.application_id}/{inter.token}/messages/@original"
    patch = await fake_discord.wait_for_request("PATCH", hook)
    assert patch.json["content"] == "all feeds healthy"
    await fake_discord.wait_for_request("GET", hook)
    await eventually(lambda: "status" in bot.seen)
    assert bot.seen["status"] == "all feeds healthy"
    assert fake_discord.messages[inter.original_message_id or 0]["edited_timestamp"] is not None


async def test_button_clicks_update_the_message_or_defer(
    bot: Bot, fake_discord: FakeDiscord
) -> None:
    channel = bot.client.get_channel(fake_discord.guild_list[0].text_channels()[0].id)
    assert isinstance(channel, discord.TextChannel)
    view = Pager()
    sent = await channel.send("page 1", view=view)
    assert fake_discord.messages[sent.id]["components"][0]["components"][0]["custom_id"] == "more"

    click = await fake_discord.send_component(sent.id, "more")
    cb = await click.wait_response()
    assert cb.json["type"] == 7
    assert cb.json["data"]["content"] == "page 2"
    assert fake_discord.messages[sent.id]["content"] == "page 2"

    ack = await fake_discord.send_component(sent.id, "ack")
    assert (await ack.wait_response()).json == {"type": 6}
    view.stop()


@pytest.mark.usefixtures("bot")
async def test_modal_is_shown_and_its_submission_handled(fake_discord: FakeDiscord) -> None:
    opened = await fake_discord.send_interaction("feedback")
    cb = await opened.wait_response()
    assert cb.json["type"] == 9
    assert cb.json["data"]["custom_id"] == "feedback-modal"
    assert cb.json["data"]["title"] == "Feedback"

    submitted = await fake_discord.send_modal_submit("feedback-modal", {"note": "more Asia"})
    reply = await submitted.wait_response()
    assert reply.json["type"] == 4
    assert reply.json["data"]["content"] == "Thanks: more Asia"
    assert reply.json["data"]["flags"] == 64


async def test_command_in_a_dm(bot: Bot, fake_discord: FakeDiscord) -> None:
    inter = await fake_discord.send_interaction("brief", {"topic": "china"}, dm=True)
    cb = await inter.wait_response()
    assert inter.payload["context"] == 1
    assert "member" not in inter.payload
    assert bot.seen["brief"]["guild_id"] is None
    assert cb.json["data"]["content"] == "You need Manage Server."  # no guild, no permissions


@pytest.mark.usefixtures("bot")
async def test_unregistered_command_cannot_be_sent(fake_discord: FakeDiscord) -> None:
    with pytest.raises(LookupError):
        await fake_discord.send_interaction("nope")
    with pytest.raises(ValueError, match="required"):
        await fake_discord.send_interaction("brief")


# -- messages ------------------------------------------------------------------------


async def test_nonce_with_enforce_nonce_creates_one_message(
    bot: Bot, fake_discord: FakeDiscord
) -> None:
    channel = bot.client.get_channel(fake_discord.guild_list[0].text_channels()[0].id)
    assert isinstance(channel, discord.TextChannel)
    first = await channel.send("Morning digest", nonce="digest-2024-05-01")
    second = await channel.send("Morning digest", nonce="digest-2024-05-01")

    posts = fake_discord.requests("POST", rf"/channels/{channel.id}/messages")
    assert [p.json["enforce_nonce"] for p in posts] == [True, True]
    assert first.id == second.id
    assert [m["content"] for m in fake_discord.channel_messages(channel.id)] == ["Morning digest"]
    await eventually(lambda: len(bot.messages) == 1)  # one MESSAGE_CREATE on the gateway

    other = await channel.send("Morning digest", nonce="digest-2024-05-02")
    assert other.id != first.id


async def test_429_is_retried_after_retry_after_and_creates_one_message(
    bot: Bot, fake_discord: FakeDiscord
) -> None:
    channel = bot.client.get_channel(fake_discord.guild_list[0].text_channels()[0].id)
    assert isinstance(channel, discord.TextChannel)
    fake_discord.script("POST", r"/channels/\d+/messages", faults.rate_limited(0.2))

    message = await channel.send("after the limit")

    posts = fake_discord.requests("POST", rf"/channels/{channel.id}/messages")
    assert [p.status for p in posts] == [429, 200]
    assert posts[1].at - posts[0].at >= 0.2
    assert posts[0].response == {
        "message": "You are being rate limited.",
        "retry_after": 0.2,
        "global": False,
    }
    assert [m["id"] for m in fake_discord.channel_messages(channel.id)] == [str(message.id)]


async def test_real_bucket_headers_make_discord_py_wait(
    bot: Bot, fake_discord: FakeDiscord
) -> None:
    fake_discord.set_rate_limit("messages", 2, 0.4)
    channel = bot.client.get_channel(fake_discord.guild_list[0].text_channels()[1].id)
    assert isinstance(channel, discord.TextChannel)
    for n in range(3):
        await channel.send(f"item {n}")
    posts = fake_discord.requests("POST", rf"/channels/{channel.id}/messages")
    assert [p.status for p in posts] == [200, 200, 200]  # no 429: it honoured Remaining: 0
    assert posts[2].at - posts[0].at >= 0.39


async def test_global_429_and_server_error_are_retried(bot: Bot, fake_discord: FakeDiscord) -> None:
    channel = bot.client.get_channel(fake_discord.guild_list[0].text_channels()[0].id)
    assert isinstance(channel, discord.TextChannel)
    # discord.py sleeps 1 + 2 * attempt seconds after a 5xx: put the 502 first
    fake_discord.script(
        "POST",
        r"/channels/\d+/messages",
        faults.server_error(502),
        faults.rate_limited(0.1, is_global=True),
    )
    await channel.send("eventually")
    posts = fake_discord.requests("POST", rf"/channels/{channel.id}/messages")
    assert [p.status for p in posts] == [502, 429, 200]
    assert posts[0].response is None  # the 502 is an HTML page, not JSON
    assert posts[1].response["global"] is True
    assert len(fake_discord.channel_messages(channel.id)) == 1


async def test_discord_error_codes_reach_the_client(bot: Bot, fake_discord: FakeDiscord) -> None:
    guild = fake_discord.guild_list[0]
    channel = bot.client.get_channel(guild.text_channels()[0].id)
    assert isinstance(channel, discord.TextChannel)

    fake_discord.script("POST", r"/channels/\d+/messages", faults.missing_permissions())
    with pytest.raises(discord.Forbidden) as forbidden:
        await channel.send("x")
    assert (forbidden.value.status, forbidden.value.code) == (403, 50013)

    with pytest.raises(discord.NotFound) as unknown:
        await bot.client.http.send_message(1234, params=_params("x"))
    assert unknown.value.code == 10003
    assert unknown.value.text == "Unknown Channel"

    with pytest.raises(discord.HTTPException) as too_long:
        await channel.send("x" * 2001)
    assert (too_long.value.status, too_long.value.code) == (400, 50035)
    assert "2000 or fewer" in too_long.value.text

    with pytest.raises(discord.HTTPException) as big_embed:
        await channel.send(embed=discord.Embed(title="t" * 257))
    assert big_embed.value.code == 50035
    assert "embeds.0.title" in big_embed.value.text

    # a real permission overwrite: the bot may not send in #news
    news = guild.text_channels()[1]
    news.overwrites.append(Overwrite(guild.id, 0, deny=SEND_MESSAGES))
    news_channel = bot.client.get_channel(news.id)
    assert isinstance(news_channel, discord.TextChannel)
    with pytest.raises(discord.Forbidden) as denied:
        await news_channel.send("x")
    assert denied.value.code == 50013
    assert fake_discord.channel_messages(news.id) == []


async def test_message_with_attachment_is_multipart(bot: Bot, fake_discord: FakeDiscord) -> None:
    channel = bot.client.get_channel(fake_discord.guild_list[1].text_channels()[0].id)
    assert isinstance(channel, discord.TextChannel)
    sent = await channel.send("digest", file=discord.File(io.BytesIO(b"%PDF-1.4"), "digest.pdf"))
    post = await fake_discord.wait_for_request("POST", rf"/channels/{channel.id}/messages")
    assert post.content_type.startswith("multipart/form-data")
    assert post.json["content"] == "digest"
    assert post.files[0].filename == "digest.pdf"
    assert post.files[0].data == b"%PDF-1.4"
    assert sent.attachments[0].filename == "digest.pdf"
    assert sent.attachments[0].content_type == "application/pdf"


async def test_channel_reads_edits_deletes(bot: Bot, fake_discord: FakeDiscord) -> None:
    general = fake_discord.guild_list[0].text_channels()[0]
    channel = await bot.client.fetch_channel(general.id)
    assert isinstance(channel, discord.TextChannel)
    assert channel.name == "general"
    one = await channel.send("one")
    two = await channel.send("two")
    assert (await channel.fetch_message(one.id)).content == "one"
    assert [m.content async for m in channel.history(limit=10)] == ["two", "one"]
    edited = await two.edit(content="two, edited")
    assert edited.edited_at is not None
    await one.delete()
    with pytest.raises(discord.NotFound) as gone:
        await channel.fetch_message(one.id)
    assert gone.value.code == 10008
    assert [m["content"] for m in fake_discord.channel_messages(general.id)] == ["two, edited"]


async def test_guild_join_and_removal_reach_the_client(bot: Bot, fake_discord: FakeDiscord) -> None:
    join = asyncio.ensure_future(bot.client.wait_for("guild_join", timeout=5))
    guild = await fake_discord.join_guild("Newsroom", channels=["desk"])
    joined = await join
    assert joined.id == guild.id
    assert [c.name for c in joined.text_channels] == ["desk"]
    assert joined.shard_id == fake_discord.shard_of(guild.id)

    remove = asyncio.ensure_future(bot.client.wait_for("guild_remove", timeout=5))
    await fake_discord.remove_guild(guild.id)
    assert (await remove).id == guild.id
    assert bot.client.get_guild(guild.id) is None


# -- gateway faults -----------------------------------------------------------------


async def test_gateway_drop_resumes_and_replays_missed_events(
    bot: Bot, fake_discord: FakeDiscord
) -> None:
    guild = fake_discord.guild_list[0]
    shard = fake_discord.shard_of(guild.id)
    assert fake_discord.drop_gateway(shard) == 1

    # sent while the socket is down: buffered, then replayed on RESUME
    await fake_discord.send_user_message(guild.text_channels()[0].id, "missed while away")

    await eventually(lambda: bot.resumed == [shard])
    assert fake_discord.resume_log == [
        {
            "shard_id": shard,
            "seq": fake_discord.resume_log[0]["seq"],
            "replayed": ["MESSAGE_CREATE"],
            "path": "/resume",
        }
    ]
    resume = await fake_discord.wait_for_gateway(op=6, direction="recv")
    assert resume.d["session_id"] == fake_discord.gateway.shard_sessions[shard].session_id
    await eventually(lambda: len(bot.messages) == 1)
    assert bot.messages[0].author.id == fake_discord.reader.id
    assert bot.messages[0].content == ""  # no MESSAGE_CONTENT intent, as on Discord
    assert len(fake_discord.identify_log) == 2  # resumed, not re-identified

    # and the resumed shard still carries interactions
    inter = await fake_discord.send_interaction(
        "brief", {"topic": "chile"}, guild_id=guild.id, user=fake_discord.admin
    )
    assert (await inter.wait_response()).json["data"]["content"] == "Briefing on chile"


async def test_reconnect_request_and_invalid_session(bot: Bot, fake_discord: FakeDiscord) -> None:
    assert await fake_discord.request_reconnect(1) == 1
    await eventually(lambda: bot.resumed == [1])

    assert await fake_discord.invalidate_session(0, resumable=False) == 1
    await eventually(lambda: len(fake_discord.identify_log) == 3)
    assert fake_discord.identify_log[2]["shard"] == (0, 2)
    # a fresh IDENTIFY goes to DEFAULT_GATEWAY, which the redirect points at the fake
    assert fake_discord.gateway_connects[-1]["path"] == "/gateway"
    await eventually(lambda: bot.shard_ready.count(0) == 2)


async def test_fatal_close_code_ends_connect(fake_discord: FakeDiscord) -> None:
    b = build_bot()
    from fakediscord.client import fast_identify

    fast_identify(b.client)
    await b.client.login(fake_discord.token)
    task = asyncio.create_task(b.client.connect())
    await asyncio.wait_for(b.client.wait_until_ready(), 10)
    await fake_discord.close_gateway(0, code=4004, reason="Authentication failed.")
    with pytest.raises(discord.ConnectionClosed) as info:
        await asyncio.wait_for(task, 5)
    assert info.value.code == 4004
    assert b.client.is_closed()


async def test_clean_close_invalidates_sessions(
    fake_discord: FakeDiscord, run_client: RunClient
) -> None:
    b = build_bot()
    await run_client(b.client)
    sessions = list(fake_discord.gateway.shard_sessions.values())
    await b.client.close()
    await eventually(lambda: all(s.conn is None for s in sessions))
    assert [s.resumable for s in sessions] == [False, False]  # closed with 1000


def _params(content: str) -> Any:
    from discord.http import handle_message_parameters

    return handle_message_parameters(content=content)
