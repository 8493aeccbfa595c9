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

Discord unreachable (connection refused, a timeout, a 5xx, a 404 from a wrong or not
yet running API base), at start or later: :func:`start_discord` logs one line and tries
again with backoff (5 s doubling to 5 min), while polling and the other adapters go on.
Only a refused token stops it (a configuration error).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

import aiohttp
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
from bot.core.commands import CommandSpec
from bot.core.telemetry import NULL_TELEMETRY, Telemetry
from bot.errors import ConfigError
from bot.ops.logs import event

if TYPE_CHECKING:
    from bot.app import App

log = logging.getLogger(__name__)

DISCORD_API = "https://discord.com/api/v10"
ENV_API_BASE = "DISCORD_API_BASE"
#: at shutdown, how long commands being answered may take to finish
DRAIN_TIMEOUT = 5.0
#: retrying an unreachable Discord: the first wait, doubled up to the last
RETRY_FIRST = 5.0
RETRY_MAX = 300.0


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
    """The sharded client; tells the bot when every shard is ready, and telemetry when
    the connection comes and goes (connected: ready, and no shard disconnected)."""

    def __init__(
        self,
        *,
        on_first_ready: Callable[[], Awaitable[None]],
        telemetry: Telemetry = NULL_TELEMETRY,
        **options: Any,
    ) -> None:
        super().__init__(**options)
        self._on_first_ready = on_first_ready
        self._telemetry = telemetry
        self._down: set[int] = set()

    def _report(self) -> None:
        up = self.is_ready() and not self._down and not self.is_closed()
        detail = None if up else f"shard(s) {sorted(self._down)} reconnecting"
        self._telemetry.adapter(PLATFORM, connected=up, detail=detail)

    async def on_ready(self) -> None:
        self._report()
        await self._on_first_ready()

    async def on_shard_disconnect(self, shard_id: int) -> None:
        self._down.add(shard_id)
        self._report()

    async def on_shard_ready(self, shard_id: int) -> None:
        self._down.discard(shard_id)
        if self.is_ready():
            self._report()

    async def on_shard_resumed(self, shard_id: int) -> None:
        await self.on_shard_ready(shard_id)


class TimedCommandRunner(CommandRunner):
    """The command runner, telling telemetry how long each command took."""

    def __init__(self, *args: Any, telemetry: Telemetry, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.telemetry = telemetry

    async def run(
        self, interaction: discord.Interaction[Any], spec: CommandSpec, args: dict[str, Any]
    ) -> None:
        start = time.monotonic()
        ok = False
        try:
            await super().run(interaction, spec, args)
            ok = True
        finally:
            self.telemetry.command(spec.name, time.monotonic() - start, ok=ok)


class DiscordBot:
    """The client, its command tree, the command runner and the delivery sink."""

    def __init__(
        self, app: App, *, telemetry: Telemetry = NULL_TELEMETRY, **client_options: Any
    ) -> None:
        self.app = app
        self.settings = app.settings.discord
        self.telemetry = telemetry
        options: dict[str, Any] = {
            "intents": intents(),
            "allowed_mentions": NO_MENTIONS,
            "shard_count": self.settings.shard_count,
        }
        options.update(client_options)
        self.client = BriefbotClient(on_first_ready=self._on_ready, telemetry=telemetry, **options)
        self.runner = TimedCommandRunner(app.service, app.storage, telemetry=telemetry)
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

    @property
    def was_ready(self) -> bool:
        """Whether this client got connected (ready) at some point."""
        return self._resend is not None

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


def unreachable(err: BaseException) -> str | None:
    """Why Discord could not be reached, if ``err`` means that (worth retrying); None
    for anything else."""
    if isinstance(err, discord.HTTPException) and (
        err.status >= 500 or err.status in (404, 408, 429)
    ):
        text = (err.text or "").strip().splitlines()
        return f"HTTP {err.status}" + (f" {text[0][:120]}" if text else "")
    if isinstance(err, discord.GatewayNotFound):
        return "the gateway URL could not be found"
    if isinstance(err, discord.ConnectionClosed):
        return f"the gateway closed the connection (code {err.code})"
    if isinstance(err, TimeoutError):
        return "no answer in time"
    if isinstance(err, aiohttp.ClientConnectorError):
        cause = err.os_error
        if isinstance(cause, ConnectionRefusedError) or cause.errno == errno.ECONNREFUSED:
            return "connection refused"
        return f"cannot connect ({cause.strerror or cause})"
    if isinstance(err, aiohttp.ClientError):
        return f"{type(err).__name__}: {err}"
    if isinstance(err, OSError):
        return f"network error ({err.strerror or err})"
    return None


async def start_discord(
    app: App,
    token: str,
    *,
    telemetry: Telemetry = NULL_TELEMETRY,
    retry_first: float = RETRY_FIRST,
    retry_max: float = RETRY_MAX,
    **client_options: Any,
) -> None:
    """Run Briefbot on Discord until cancelled (``briefbot run``). While Discord cannot
    be reached it logs one line per attempt and tries again with backoff; a refused
    token raises ConfigError."""
    delay = retry_first
    while True:
        bot = DiscordBot(app, telemetry=telemetry, **client_options)
        try:
            await bot.run(token)
        except Exception as err:
            reason = unreachable(err)
            if reason is None:
                raise
            connected = bot.was_ready
        else:  # connect() returned: the gateway closed for good; connect again
            reason, connected = "the connection ended", True
        if connected:
            delay = retry_first  # it had worked: start the backoff over
        telemetry.adapter(PLATFORM, connected=False, detail=f"{reason}; retrying")
        wait = delay * random.uniform(0.8, 1.2)
        event(
            "discord: cannot reach Discord at %s (%s); retrying in %.0f s",
            api_base(app.settings.discord), reason, wait, level=logging.WARNING,
            event="discord_unreachable", reason=reason, retry_in=round(wait, 3),
        )  # fmt: skip
        await asyncio.sleep(wait)
        delay = min(delay * 2, retry_max)
