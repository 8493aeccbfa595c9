"""The Slack app as a whole: start-up and settings, the OAuth v2 install flow against a
fake ``oauth.v2.access`` (installations encrypted in our database), uninstalling,
Socket Mode against a loopback ``apps.connections.open`` and websocket, the manifest,
and ``briefbot run`` as a process against the fake Slack."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from fakeslack import Channel, FakeSlack
from fakeslack.harness import SECRET_KEY, SIGNING_SECRET, start_slack_env, stop_slack_env
from fakeslack.signing import SlackRequests

from bot.adapters.slack.app import SlackBot, SlackCredentials, api_base
from bot.adapters.slack.installation import SqlInstallationStore, fernet_for
from bot.adapters.slack.manifest import BOT_SCOPES, manifest
from bot.config import SlackSettings, load_settings
from bot.errors import ConfigError

pytest_plugins = ["fakeslack.pytest_plugin"]

OTHER = "T0OTHER"
OTHER_TOKEN = "xoxb-other-workspace-token"


def texts(message: dict[str, Any]) -> str:
    return "\n".join(b["text"]["text"] for b in message.get("blocks", []) if "text" in b)


# -- settings -----------------------------------------------------------------------------


def test_credentials_choose_the_mode_and_say_what_is_missing() -> None:
    assert SlackCredentials.from_env({}) is None
    http = SlackCredentials.from_env({"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s"})
    assert http is not None
    assert (http.multi, http.socket_mode) == (False, False)
    sock = SlackCredentials.from_env({"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_APP_TOKEN": "xapp-1"})
    assert sock is not None
    assert sock.socket_mode
    oauth = SlackCredentials.from_env(
        {
            "SLACK_CLIENT_ID": "1.2",
            "SLACK_CLIENT_SECRET": "c",
            "SLACK_SIGNING_SECRET": "s",
            "BRIEFBOT_SECRET_KEY": SECRET_KEY,
        }
    )
    assert oauth is not None
    assert oauth.multi
    with pytest.raises(ConfigError, match="SLACK_SIGNING_SECRET: is not set"):
        SlackCredentials.from_env({"SLACK_BOT_TOKEN": "xoxb-1"})
    with pytest.raises(ConfigError, match="BRIEFBOT_SECRET_KEY not set"):
        SlackCredentials.from_env(
            {"SLACK_CLIENT_ID": "1", "SLACK_CLIENT_SECRET": "c", "SLACK_SIGNING_SECRET": "s"}
        )


def test_slack_settings_from_files_and_environment(tmp_path: Path) -> None:
    settings = load_settings(
        None,
        {
            "BRIEFBOT_SLACK__HOST": "127.0.0.1",
            "BRIEFBOT_SLACK__PORT": "8123",
            "BRIEFBOT_SLACK__MANAGERS": '["U1", "U2"]',
        },
    )
    assert (settings.slack.host, settings.slack.port) == ("127.0.0.1", 8123)
    assert settings.slack.managers == ["U1", "U2"]
    with pytest.raises(ConfigError, match="BRIEFBOT_SLACK__PORT"):
        load_settings(None, {"BRIEFBOT_SLACK__PORT": "99999"})
    assert api_base(SlackSettings(), {"SLACK_API_BASE": "http://127.0.0.1:5/api"}) == (
        "http://127.0.0.1:5/api/"
    )
    with pytest.raises(ConfigError, match="SLACK_API_BASE"):
        api_base(SlackSettings(), {"SLACK_API_BASE": "ftp://x"})


def test_secret_key_must_be_a_fernet_key_or_a_long_passphrase() -> None:
    from cryptography.fernet import Fernet

    key = Fernet.generate_key().decode()
    token = fernet_for(key).encrypt(b"x")
    assert Fernet(key.encode()).decrypt(token) == b"x"
    assert fernet_for(SECRET_KEY).decrypt(fernet_for(SECRET_KEY).encrypt(b"y")) == b"y"
    with pytest.raises(ConfigError, match="too short"):
        fernet_for("short")


def test_manifest_has_the_command_scopes_urls_and_events(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from bot.__main__ import main

    assert main(["slack", "manifest", "--url", "https://briefbot.example.org/"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data == manifest("https://briefbot.example.org")
    (command,) = data["features"]["slash_commands"]
    assert command["command"] == "/briefbot"
    assert command["url"] == "https://briefbot.example.org/slack/events"
    assert data["oauth_config"]["scopes"]["bot"] == list(BOT_SCOPES)
    assert data["oauth_config"]["redirect_urls"] == [
        "https://briefbot.example.org/slack/oauth_redirect"
    ]
    settings = data["settings"]
    assert settings["event_subscriptions"]["request_url"].endswith("/slack/events")
    assert settings["event_subscriptions"]["bot_events"] == ["app_uninstalled", "tokens_revoked"]
    assert settings["interactivity"]["message_menu_options_url"].endswith("/slack/events")
    assert settings["socket_mode_enabled"] is False
    assert main(["slack", "manifest"]) == 2
    assert "--url" in capsys.readouterr().err
    assert main(["slack", "manifest", "--socket-mode"]) == 0
    sock = json.loads(capsys.readouterr().out)
    assert sock["settings"]["socket_mode_enabled"] is True
    assert "url" not in sock["features"]["slash_commands"][0]


# -- OAuth: many workspaces ------------------------------------------------------------------


def oauth_credentials() -> SlackCredentials:
    return SlackCredentials(
        signing_secret=SIGNING_SECRET,
        client_id="111.222",
        client_secret="oauth-client-secret",
        secret_key=SECRET_KEY,
    )


async def install(base: str, fake: FakeSlack, team: str, token: str) -> aiohttp.ClientResponse:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{base}/slack/install") as page:
            assert page.status == 200
            html = await page.text()
            cookie = page.headers["Set-Cookie"]
        state = re.search(r"state=([\w\-]+)", html).group(1)  # type: ignore[union-attr]
        assert "client_id=111.222" in html
        assert "scope=commands%2Cchat%3Awrite" in html or "scope=commands,chat:write" in html
        code = fake.oauth_code(team, token)
        async with session.get(
            f"{base}/slack/oauth_redirect",
            params={"code": code, "state": state},
            headers={"Cookie": cookie.split(";")[0]},
        ) as done:
            await done.read()
            return done


async def test_oauth_install_stores_the_workspace_encrypted_and_serves_it(
    fake_slack: FakeSlack, tmp_path: Path
) -> None:
    fake_slack.channels["C0OTHER"] = Channel("C0OTHER", "other-general")
    env = await start_slack_env(fake_slack, tmp_path, credentials=oauth_credentials())
    try:
        base = env.slack.url.removesuffix("/slack/events")
        done = await install(base, fake_slack, OTHER, OTHER_TOKEN)
        assert done.status == 200
        (exchange,) = fake_slack.called("oauth.v2.access")
        assert exchange.args["code"].startswith("code-")
        store = env.bot.installations
        assert isinstance(store, SqlInstallationStore)
        (row,) = await store.raw_rows()
        assert row["team_id"] == OTHER
        assert OTHER_TOKEN not in json.dumps(row, default=str)  # encrypted at rest
        bot = await store.async_find_bot(enterprise_id=None, team_id=OTHER)
        assert bot is not None
        assert bot.bot_token == OTHER_TOKEN

        # a command from that workspace runs with its token
        fake_slack.users["UADMIN"]["team_id"] = OTHER
        answer = await env.command("status", channel="C0OTHER", team=OTHER)
        assert answer.status == 200
        assert "Feeds: 2" in texts(answer.json)
        (auth,) = [c for c in fake_slack.called("auth.test") if c.token == OTHER_TOKEN][:1]
        assert auth.token == OTHER_TOKEN
        # and its deliveries too
        record = await env.channel_record("C0OTHER", team=OTHER)
        assert record.guild_id == OTHER
        await env.seed(["Xi Jinping and Biden agree to resume military talks"])
        await env.app.service.send_scheduled_digest(record.id, env.clock.now())
        assert len(fake_slack.posted("C0OTHER")) == 1
        assert [c.token for c in fake_slack.called("chat.postMessage")] == [OTHER_TOKEN]

        # a replayed or forged state is refused, nothing stored
        async with (
            aiohttp.ClientSession() as session,
            session.get(
                f"{base}/slack/oauth_redirect",
                params={"code": fake_slack.oauth_code("T0EVIL", "xoxb-evil"), "state": "forged"},
            ) as forged,
        ):
            assert forged.status >= 400
        assert len(await store.raw_rows()) == 1

        # uninstalled: the installation is deleted, its channels paused
        uninstall = await env.slack.event(
            {
                "token": "x",
                "team_id": OTHER,
                "api_app_id": "A0APP",
                "type": "event_callback",
                "event_id": "Ev1",
                "event_time": 1700000000,
                "event": {"type": "app_uninstalled"},
            }
        )
        assert uninstall.status == 200

        async def forgotten() -> bool:
            channel = await env.app.storage.channel_by_id(record.id)
            return channel.paused_reason is not None

        await env.until(forgotten, "the uninstall")
        assert await store.raw_rows() == []
        paused = await env.app.storage.channel_by_id(record.id)
        assert "removed from this Slack workspace" in (paused.paused_reason or "")
        general = await env.app.storage.get_channel("slack", "C0GENERAL")
        assert general.paused_reason is None
    finally:
        await stop_slack_env(env)


async def test_tokens_revoked_forgets_a_single_workspace_and_pauses_it(
    fake_slack: FakeSlack, tmp_path: Path
) -> None:
    env = await start_slack_env(fake_slack, tmp_path)
    try:
        await env.command("status")
        user_only = await env.slack.event(
            {
                "token": "x",
                "team_id": fake_slack.team_id,
                "api_app_id": "A0APP",
                "type": "event_callback",
                "event_id": "Ev2",
                "event_time": 1700000000,
                "event": {"type": "tokens_revoked", "tokens": {"oauth": ["UADMIN"]}},
            }
        )
        assert user_only.status == 200
        await env.settle()
        record = await env.channel_record()
        assert record.paused_reason is None
        await env.slack.event(
            {
                "token": "x",
                "team_id": fake_slack.team_id,
                "api_app_id": "A0APP",
                "type": "event_callback",
                "event_id": "Ev3",
                "event_time": 1700000000,
                "event": {"type": "tokens_revoked", "tokens": {"bot": ["UBOT"]}},
            }
        )

        async def paused() -> bool:
            return (await env.channel_record()).paused_reason is not None

        await env.until(paused, "the pause")
        record = await env.channel_record()
        assert "removed from this Slack workspace" in (record.paused_reason or "")
    finally:
        await stop_slack_env(env)


# -- Socket Mode ----------------------------------------------------------------------------


async def test_socket_mode_connects_and_answers_commands_over_the_websocket(
    fake_slack: FakeSlack, tmp_path: Path
) -> None:
    creds = SlackCredentials(bot_token=fake_slack.bot_token, app_token=fake_slack.app_token)
    env = await start_slack_env(fake_slack, tmp_path, credentials=creds)
    try:
        assert env.bot.bound_port is None  # no HTTP listener
        assert fake_slack.connections_opened == 1
        opened = fake_slack.called("apps.connections.open")
        assert opened[0].token == fake_slack.app_token
        body, url, _ = SlackRequests("", "", fake_slack).command_body("help")
        from urllib.parse import parse_qsl

        ack = await fake_slack.send_envelope("slash_commands", dict(parse_qsl(body)))
        payload = ack["payload"]
        assert payload["response_type"] == "ephemeral"
        assert "/briefbot brief" in texts(payload)
        # a command whose answer comes later, through the response_url
        env.bot.commands.ack_within = 0.0
        body, url, _ = SlackRequests("", "", fake_slack).command_body("status")
        await fake_slack.send_envelope("slash_commands", dict(parse_qsl(body)))

        async def answered() -> bool:
            return bool(fake_slack.response_posts(url))

        await env.until(answered, "the answer through the response_url")
        (later,) = fake_slack.response_posts(url)
        assert "Feeds: 2" in texts(later)
    finally:
        await stop_slack_env(env)


# -- briefbot run --------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def wait_listening(port: int, proc: asyncio.subprocess.Process) -> None:
    for _ in range(400):
        if proc.returncode is not None:
            raise AssertionError("briefbot run exited")
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.025)
            continue
        writer.close()
        await writer.wait_closed()
        return
    raise AssertionError("not listening")


def config_dir(tmp_path: Path) -> Path:
    """A config with one loopback feed (refused by the SSRF guard: nothing is fetched)."""
    cfg = tmp_path / "cfg"
    cfg.mkdir()
    (cfg / "briefbot.toml").write_text(f'[storage]\ndata_dir = "{tmp_path / "data"}"\n')
    (cfg / "feeds.toml").write_text(
        'replace_defaults = true\n[[feed]]\nname = "Nowhere"\nurl = "http://127.0.0.1:9/feed.xml"\n'
    )
    return cfg


async def test_briefbot_run_serves_slack_over_http_beside_discord(
    fake_slack: FakeSlack, tmp_path: Path
) -> None:
    """One process: Slack over HTTP and Discord (its own loopback fake) together."""
    from fakediscord import FakeDiscord

    async with FakeDiscord(shard_count=1) as discord_fake:
        await run_both(fake_slack, discord_fake, tmp_path)
    assert not discord_fake.internal_errors


async def run_both(fake_slack: FakeSlack, discord_fake: Any, tmp_path: Path) -> None:
    cfg = config_dir(tmp_path)
    port = free_port()
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("BRIEFBOT_", "DISCORD_", "SLACK_"))
    }
    env.update(
        DISCORD_TOKEN=discord_fake.token,
        DISCORD_API_BASE=discord_fake.api_base,
        HOME=str(tmp_path),
        XDG_DATA_HOME=str(tmp_path / "xdg"),
        SLACK_BOT_TOKEN=fake_slack.bot_token,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_API_BASE=fake_slack.api_base,
        BRIEFBOT_SLACK__HOST="127.0.0.1",
        BRIEFBOT_SLACK__PORT=str(port),
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "--config",
        str(cfg),
        "run",
        env=env,
        cwd=tmp_path,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        await wait_listening(port, proc)
        slack = SlackRequests(f"http://127.0.0.1:{port}/slack/events", SIGNING_SECRET, fake_slack)
        answer = await slack.command("help")
        assert answer.status == 200
        assert "/briefbot brief" in texts(answer.json)
        refused = await slack.command('track kind:actor name:"Li Qiang"', user="UMEMBER")
        assert "needs a workspace admin or owner" in texts(refused.json)
        unsigned = await slack.post("text=help", "application/x-www-form-urlencoded", signed=False)
        assert unsigned.status == 401
        assert fake_slack.called("auth.test")[0].token == fake_slack.bot_token
        for _ in range(400):  # and Discord connected too
            if discord_fake.identify_log:
                break
            await asyncio.sleep(0.025)
        assert discord_fake.identify_log[0]["d"]["token"] == discord_fake.token
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGINT)
        await asyncio.wait_for(proc.wait(), timeout=20)
        assert proc.stderr is not None
        err = (await proc.stderr.read()).decode()
    assert proc.returncode == 130, err  # stopped by Ctrl-C: 130, as a shell expects
    assert "Traceback" not in err
    assert "will be unused" not in err
    assert "Traceback" not in err
    assert "briefbot: stopped" in err


async def test_a_refused_bot_token_stops_start_up_with_a_clear_message(
    fake_slack: FakeSlack, tmp_path: Path
) -> None:
    from fakeslack.harness import build

    app = build(tmp_path)
    await app.open()
    try:
        bot = SlackBot(
            app, SlackCredentials(signing_secret=SIGNING_SECRET, bot_token="xoxb-wrong"), port=0
        )
        with pytest.raises(ConfigError) as caught:
            await bot.start()
        await bot.stop()
        assert str(caught.value).startswith(
            "SLACK_BOT_TOKEN: Slack refused the token (invalid_auth)"
        )
        assert caught.value.exit_code == 2
        assert bot.bound_port is None
        assert "slack" not in app.sinks
    finally:
        await app.close()


async def test_slack_bot_refuses_a_port_in_use(fake_slack: FakeSlack, tmp_path: Path) -> None:
    from fakeslack.harness import build

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        app = build(tmp_path)
        await app.open()
        try:
            bot = SlackBot(
                app,
                SlackCredentials(signing_secret=SIGNING_SECRET, bot_token=fake_slack.bot_token),
                port=port,
            )
            with pytest.raises(ConfigError, match=f"cannot listen on 127.0.0.1:{port}"):
                await bot.start()
            await bot.stop()
        finally:
            await app.close()


async def test_installation_store_round_trip_and_a_changed_key(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from slack_sdk.oauth.installation_store.models.installation import Installation

    from bot.storage.sql import SqlStorage

    storage = SqlStorage(f"sqlite+aiosqlite:///{tmp_path / 'b.db'}")
    await storage.open()
    try:
        store = SqlInstallationStore(storage, SECRET_KEY)
        for token in ("xoxb-first", "xoxb-second"):  # a reinstall replaces the row
            await store.async_save(
                Installation(
                    app_id="A1",
                    team_id="T1",
                    team_name="One",
                    bot_token=token,
                    bot_id="B1",
                    bot_user_id="U1",
                    bot_scopes="commands,chat:write",
                    user_id="U2",
                )
            )
        (row,) = await store.raw_rows()
        assert "xoxb-" not in row["data"]
        found = await store.async_find_installation(enterprise_id=None, team_id="T1")
        assert found is not None
        assert (found.bot_token, found.bot_scopes, found.team_name) == (
            "xoxb-second",
            ["commands", "chat:write"],
            "One",
        )
        assert await store.async_find_bot(enterprise_id=None, team_id="T2") is None
        other = SqlInstallationStore(storage, "another-passphrase-that-is-long-enough!!")
        assert await other.async_find_bot(enterprise_id=None, team_id="T1") is None
        assert "cannot be decrypted" in caplog.text
        await store.async_delete_installation(enterprise_id=None, team_id="T1")
        assert await store.raw_rows() == []
    finally:
        await storage.close()
