"""Slash-command syncing (only when the tree changed) and ``briefbot discord sync|invite``,
against the loopback fake Discord."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from conftest import start_discord_env, stop_discord_env

import bot.core.commands as core_commands
from bot.__main__ import build_parser
from bot.__main__ import main as briefbot
from bot.adapters.discord import cli
from bot.adapters.discord.bot import api_base
from bot.config import DiscordSettings
from bot.errors import ConfigError

pytestmark = pytest.mark.filterwarnings("error::ResourceWarning")

INVITE_PERMISSIONS = (1 << 10) | (1 << 11) | (1 << 14) | (1 << 15) | (1 << 16)


def global_puts(fake: Any) -> list[Any]:
    return fake.requests("PUT", rf"/applications/{fake.application_id}/commands")


@pytest.mark.usefixtures("fast_shards")
async def test_commands_are_synced_at_start_only_when_they_changed(
    fake_discord: Any,
    tmp_path: Path,
    feed_site: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env = await start_discord_env(fake_discord, tmp_path, feed_site)
    await stop_discord_env(env)
    assert len(global_puts(fake_discord)) == 1
    state = json.loads((tmp_path / "discord-commands.json").read_text())
    assert list(state) == [f"{fake_discord.application_id}/global"]

    # a restart with the same commands: no sync
    env = await start_discord_env(fake_discord, tmp_path, feed_site)
    await stop_discord_env(env)
    assert len(global_puts(fake_discord)) == 1

    # a new version changed a command: synced once at the next start
    changed = tuple(
        dataclasses.replace(c, description="the commands, and how to use them")
        if c.name == "help"
        else c
        for c in core_commands.COMMANDS
    )
    monkeypatch.setattr(core_commands, "COMMANDS", changed)
    env = await start_discord_env(fake_discord, tmp_path, feed_site)
    await stop_discord_env(env)
    assert len(global_puts(fake_discord)) == 2
    help_cmd = next(c for c in global_puts(fake_discord)[-1].json if c["name"] == "help")
    assert help_cmd["description"] == "the commands, and how to use them"
    env = await start_discord_env(fake_discord, tmp_path, feed_site)
    await stop_discord_env(env)
    assert len(global_puts(fake_discord)) == 2


@pytest.mark.usefixtures("fast_shards")
async def test_a_test_guild_gets_the_commands_instantly(
    fake_discord: Any, tmp_path: Path, feed_site: Any
) -> None:
    guild = fake_discord.guild_list[1]
    env = await start_discord_env(fake_discord, tmp_path, feed_site, test_guild=guild.id)
    try:
        assert not global_puts(fake_discord)
        (put,) = fake_discord.requests(
            "PUT", rf"/applications/{fake_discord.application_id}/guilds/{guild.id}/commands"
        )
        assert "brief" in [c["name"] for c in put.json]
        inter = await env.command("status", guild=1)
        assert inter.callback.json["type"] == 4
    finally:
        await stop_discord_env(env)


@pytest.mark.usefixtures("fast_shards")
async def test_a_failed_sync_is_logged_and_the_bot_still_runs(
    fake_discord: Any,
    tmp_path: Path,
    feed_site: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    env = await start_discord_env(fake_discord, tmp_path, feed_site, test_guild=42)
    try:
        assert "could not sync slash commands in test guild 42" in caplog.text
        assert not (tmp_path / "discord-commands.json").exists()  # tried again next start
        assert env.client.is_ready()
    finally:
        await stop_discord_env(env)


@pytest.mark.usefixtures("fast_shards")
async def test_a_fixed_shard_count_takes_the_gateway_from_the_api_base(
    fake_discord: Any, tmp_path: Path, feed_site: Any
) -> None:
    """With ``discord.shard_count`` set, discord.py connects to its *default* gateway
    (Discord's, unless told otherwise): the adapter must take it from
    ``GET {DISCORD_API_BASE}/gateway`` (discord.py's own default points nowhere here)."""
    env = await start_discord_env(fake_discord, tmp_path, feed_site, shard_count=2)
    try:
        assert not fake_discord.requests("GET", r"/gateway/bot")  # no need to ask
        assert [r.status for r in fake_discord.requests("GET", r"/gateway")] == [200]
        assert sorted(i["shard"] for i in fake_discord.identify_log) == [(0, 2), (1, 2)]
        assert {c["path"] for c in fake_discord.gateway_connects} == {"/gateway"}
        for guild in (0, 1):  # one per shard
            inter = await env.command("status", guild=guild)
            assert inter.callback.json["type"] == 4
    finally:
        await stop_discord_env(env)


# -- the CLI ----------------------------------------------------------------------------


def parse(*argv: str) -> Any:
    return build_parser("discord").parse_args(["discord", *argv])


def test_invite_with_an_app_id_needs_no_token(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DISCORD_TOKEN", raising=False)
    assert briefbot(["discord", "invite", "--app-id", "1234567890"]) == 0
    assert capsys.readouterr().out.strip() == (
        "https://discord.com/oauth2/authorize?client_id=1234567890"
        f"&scope=bot+applications.commands&permissions={INVITE_PERMISSIONS}"
    )


@pytest.mark.parametrize("argv", [["sync"], ["invite"]])
def test_without_a_token_says_what_to_set(
    argv: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DISCORD_TOKEN", raising=False)
    assert briefbot(["discord", *argv]) == 2
    err = capsys.readouterr().err
    assert "DISCORD_TOKEN is not set" in err
    assert "Traceback" not in err


def test_no_action_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert briefbot(["discord"]) == 2
    assert "briefbot discord {sync,invite}" in capsys.readouterr().err


@pytest.mark.usefixtures("fast_shards")
async def test_cli_sync_and_invite_against_discord(
    fake_discord: Any,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    feed_site: Any,
) -> None:
    monkeypatch.setenv("DISCORD_TOKEN", fake_discord.token)
    monkeypatch.setenv("BRIEFBOT_STORAGE__DATA_DIR", str(tmp_path))
    monkeypatch.delenv("BRIEFBOT_CONFIG_DIR", raising=False)

    assert await cli.main(parse("invite")) == 0
    assert f"client_id={fake_discord.application_id}&" in capsys.readouterr().out

    assert await cli.main(parse("sync")) == 0
    out = capsys.readouterr().out
    assert out.startswith("Synced 10 slash commands globally")
    assert "/brief" in out
    assert "/feeds" in out
    assert {c["name"] for c in fake_discord.global_commands} == set(core_commands.groups())
    guild = fake_discord.guild_list[0]
    assert await cli.main(parse("sync", "--guild", str(guild.id))) == 0
    assert "in server" in capsys.readouterr().out
    assert fake_discord.guild_commands[guild.id]

    # sync is forced: a second run syncs again
    assert await cli.main(parse("sync")) == 0
    assert len(global_puts(fake_discord)) == 2
    # and the bot, started after it, does not sync again
    env = await start_discord_env(fake_discord, tmp_path, feed_site)
    await stop_discord_env(env)
    assert len(global_puts(fake_discord)) == 2

    assert await cli.main(parse("sync", "--guild", "42")) == 1
    err = capsys.readouterr().err
    assert "Discord refused the commands in server 42: 403" in err

    monkeypatch.setenv("DISCORD_TOKEN", "not-the-token")
    with pytest.raises(ConfigError, match="DISCORD_TOKEN"):
        await cli.main(parse("sync"))


def test_api_base_comes_from_the_environment_first() -> None:
    settings = DiscordSettings(api_base="https://proxy.internal/api/v10/")
    assert api_base(settings, {}) == "https://proxy.internal/api/v10"
    assert api_base(settings, {"DISCORD_API_BASE": "http://127.0.0.1:8080/api/v10"}) == (
        "http://127.0.0.1:8080/api/v10"
    )
    assert api_base(DiscordSettings(), {}) == "https://discord.com/api/v10"
    with pytest.raises(ConfigError, match="DISCORD_API_BASE"):
        api_base(settings, {"DISCORD_API_BASE": "discord.internal"})
