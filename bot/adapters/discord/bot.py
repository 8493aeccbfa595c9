"""The Discord connection: an ``AutoShardedClient``, its command tree, and the sink.

:func:`start_discord` is what ``briefbot run`` calls when ``DISCORD_TOKEN`` is set: it
registers the Discord :class:`~bot.adapters.discord.sink.DiscordSink` on the app, logs
in, syncs the slash commands if they changed, connects every shard and runs until
cancelled, then closes the connection cleanly. Once connected it sends the deliveries
still pending (after a restart, or queued while it was connecting), each once.

Sharding: the client is an ``AutoShardedClient`` (Discord requires shards past 2,500
servers): without ``discord.shard_count`` it asks ``GET /gateway/bot`` how many shards
to run and where the gateway is.

API base: ``DISCORD_API_BASE`` (or ``discord.api_base`` in briefbot.toml) points the
whole client at another host, e.g. a REST proxy such as nirn-proxy, or a test server:
REST through discord.py's ``Route.BASE``, and the gateway URL asked from
``GET {base}/gateway`` (a REST-only proxy passes that through and returns Discord's).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

import discord
import yarl
from discord.gateway import DiscordWebSocket
from discord.http import Route

from bot.adapters.discord.commands import (
    STATE_FILE,
    BriefbotTree,
    SyncState,
    build_tree,
    sync_commands,
)
from bot.adapters.discord.embeds import NO_MENTIONS
from bot.adapters.discord.interactions import CommandRunner
from bot.adapters.discord.sink import PLATFORM, DiscordSink
from bot.config import DiscordSettings
from bot.errors import ConfigError

if TYPE_CHECKING:
    from bot.app import App

log = logging.getLogger(__name__)

DISCORD_API = "https://discord.com/api/v10"
ENV_API_BASE = "DISCORD_API_BASE"
#: at shutdown, how long commands being answered may take to finish
DRAIN_TIMEOUT = 5.0


def api_base(settings: DiscordSettings, environ: Mapping[str, str] | None = None) -> str:
    """The REST base URL: ``DISCORD_API_BASE``, else ``discord.api_base``."""
    env = os.environ if environ is None else environ
    base = (env.get(ENV_API_BASE) or settings.api_base or DISCORD_API).strip().rstrip("/")
    url = yarl.URL(base)
    if url.scheme not in ("http", "https") or not url.host:
        source = ENV_API_BASE if env.get(ENV_API_BASE) else "discord.api_base"
        raise ConfigError(
            f"{base!r} is not an http(s) URL (e.g. https://discord.com/api/v10)", key=source
        )
    return base


def use_api_base(base: str) -> bool:
    """Point discord.py's REST at ``base``; True if it is not Discord's own API."""
    if base.rstrip("/") == DISCORD_API:
        return False
    Route.BASE = base.rstrip("/")
    return True


async def use_gateway_of(client: discord.Client) -> None:
    """After login: take the gateway URL from ``GET {base}/gateway``."""
    data = await client.http.request(Route("GET", "/gateway"))
    url = data.get("url") if isinstance(data, dict) else None
    if not url:
        raise ConfigError(f"{Route.BASE}/gateway gave no gateway URL", key=ENV_API_BASE)
    DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(url)
    log.info("Discord API at %s, gateway %s", Route.BASE, url)


def intents() -> discord.Intents:
    """Only what Briefbot needs: servers and their channels (slash commands arrive
    regardless of intents; no message content, no members)."""
    wanted = discord.Intents.none()
    wanted.guilds = True
    return wanted


class BriefbotClient(discord.AutoShardedClient):
    """The sharded client; tells the bot when every shard is ready."""

    def __init__(self, *, on_first_ready: Callable[[], Awaitable[None]], **options: Any) -> None:
        super().__init__(**options)
        self._on_first_ready = on_first_ready

    async def on_ready(self) -> None:
        await self._on_first_ready()


class DiscordBot:
    """The client, its command tree, the command runner and the delivery sink."""

    def __init__(self, app: App, **client_options: Any) -> None:
        self.app = app
        self.settings = app.settings.discord
        options: dict[str, Any] = {
            "intents": intents(),
            "allowed_mentions": NO_MENTIONS,
            "shard_count": self.settings.shard_count,
        }
        options.update(client_options)
        self.client = BriefbotClient(on_first_ready=self._on_ready, **options)
        self.runner = CommandRunner(app.service, app.storage)
        self.tree: BriefbotTree = build_tree(self.client, self.runner)
        self.sink = DiscordSink(self.client)
        self.sync_state = SyncState(app.settings.storage.resolved_data_dir() / STATE_FILE)
        self._resend: asyncio.Task[Any] | None = None

    async def _on_ready(self) -> None:
        """Once connected (the first time): send what is still pending at once (after a
        restart, or what failed while connecting), each delivery once, with its nonce."""
        if self._resend is not None:
            return
        self._resend = asyncio.current_task()
        try:
            sent = await self.app.outbox.retry_pending(force=True)
        except Exception:
            log.exception("sending pending deliveries failed")
        else:
            if sent:
                log.info("sent %d pending deliveries after connecting", sent)

    async def login(self, token: str) -> None:
        custom = use_api_base(api_base(self.settings))
        try:
            await self.client.login(token)
        except discord.LoginFailure:
            raise ConfigError(
                "Discord refused the token: set DISCORD_TOKEN to the bot token from the "
                "Developer Portal (your application → Bot → Reset Token)",
                key="DISCORD_TOKEN",
            ) from None
        if custom:
            await use_gateway_of(self.client)

    async def sync_if_changed(self) -> None:
        """Sync the slash commands only when the tree changed since the last sync. A
        failure is logged (the commands registered before keep working)."""
        try:
            await sync_commands(self.tree, guild_id=self.settings.test_guild, state=self.sync_state)
        except discord.HTTPException as err:
            where = (
                f"in test guild {self.settings.test_guild}"
                if self.settings.test_guild
                else "globally"
            )
            # Discord's status and text say it all; a traceback of the HTTP call does not
            log.error(  # noqa: TRY400
                "could not sync slash commands %s: %s %s (is the bot in that "
                "server, invited with the applications.commands scope?)",
                where,
                err.status,
                err.text,
            )

    async def run(self, token: str) -> None:
        """Log in, sync if needed, connect every shard; until cancelled or closed.

        Stopping works by closing the client, not by cancelling ``connect()``: discord.py
        swallows a cancellation that lands while a shard reconnects or resumes (a gateway
        outage) and would then wait forever for its next event."""
        self.app.add_sink(PLATFORM, self.sink)
        connect: asyncio.Task[None] | None = None
        try:
            await self.login(token)
            await self.sync_if_changed()
            connect = asyncio.create_task(
                self.client.connect(reconnect=True), name="discord-connect"
            )
            await asyncio.shield(connect)
        finally:
            if self.app.sinks.get(PLATFORM) is self.sink:
                del self.app.sinks[PLATFORM]
            if self._resend is not None and not self._resend.done():
                self._resend.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._resend
            await self.tree.drain(DRAIN_TIMEOUT)  # let commands being answered finish
            await self.client.close()  # connect() returns once it reads the close ...
            if connect is not None:
                if not connect.done():
                    connect.cancel()  # ... unless a shard is reconnecting: stop that too
                # (an error that ended it was raised above, through the shield)
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await connect


async def start_discord(app: App, token: str, **client_options: Any) -> None:
    """Run Briefbot on Discord until cancelled (``briefbot run``)."""
    await DiscordBot(app, **client_options).run(token)
