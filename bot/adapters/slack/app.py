"""The Slack connection: a Bolt ``AsyncApp``, served over HTTP or Socket Mode.

:func:`start_slack` is what ``briefbot run`` calls when Slack is configured
(:meth:`SlackCredentials.from_env`):

- one workspace, HTTP: ``SLACK_BOT_TOKEN`` + ``SLACK_SIGNING_SECRET``. An aiohttp server
  (Bolt's aiohttp adapter) on ``[slack] host``/``port`` takes every request at
  ``/slack/events`` (Events API, the slash command, interactivity, options); Bolt checks
  each request's signature and age (5 minutes) before anything runs;
- one workspace, Socket Mode: ``SLACK_APP_TOKEN`` (``xapp-…``) too: no public URL, the
  app opens a websocket to Slack (``apps.connections.open``);
- many workspaces: ``SLACK_CLIENT_ID`` + ``SLACK_CLIENT_SECRET`` + ``BRIEFBOT_SECRET_KEY``
  (+ ``SLACK_SIGNING_SECRET``) instead of a bot token: Bolt serves the OAuth v2 install
  flow (``/slack/install``, ``/slack/oauth_redirect``, state checked) and keeps each
  installation in our database (:mod:`.installation`).

``SLACK_API_BASE`` (or ``[slack] api_base``) points every Web API client at another base
URL (a proxy, a test server), as ``DISCORD_API_BASE`` does for Discord.

``app_uninstalled`` and ``tokens_revoked`` (bot tokens) delete the workspace's
installation and pause its channels, with the reason ``/briefbot status`` shows.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import aiohttp
import yarl
from aiohttp import web
from slack_bolt.app.async_app import AsyncApp
from slack_bolt.app.async_server import AsyncSlackAppServer
from slack_bolt.oauth.async_oauth_settings import AsyncOAuthSettings
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from bot.adapters.slack.blocks import COMMAND
from bot.adapters.slack.commands import SlackCommands
from bot.adapters.slack.errors import error_code
from bot.adapters.slack.installation import (
    ENV_SECRET_KEY,
    MemoryStateStore,
    SqlInstallationStore,
)
from bot.adapters.slack.manifest import BOT_SCOPES
from bot.adapters.slack.respond import Permissions
from bot.adapters.slack.sink import PLATFORM, SlackSink, posting_client
from bot.adapters.slack.views import (
    IMPORT_VIEW,
    PICK_ACTION,
    SCHEDULE_VIEW,
    TRACK_VIEW,
    TZ_ACTION,
)
from bot.config import SlackSettings, secret
from bot.errors import ConfigError, DeliveryError

if TYPE_CHECKING:
    from bot.app import App

log = logging.getLogger(__name__)


class _NoTokenNotice(logging.Filter):
    """Bolt reads SLACK_BOT_TOKEN from the environment by itself and then warns that the
    ``client`` we give it (with our API base and retry handlers) makes that token unused:
    that is the intent, not news for the operator."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "`token` will be unused" not in record.getMessage()


logging.getLogger("slack_bolt.AsyncApp").addFilter(_NoTokenNotice())

SLACK_API = "https://slack.com/api/"
ENV_API_BASE = "SLACK_API_BASE"
EVENTS_PATH = "/slack/events"
INSTALL_PATH = "/slack/install"
REDIRECT_PATH = "/slack/oauth_redirect"
#: at shutdown, how long commands being answered may take to finish
DRAIN_TIMEOUT = 5.0
UNINSTALLED = (
    "Briefbot was removed from this Slack workspace (its token is gone): reinstall it, "
    "then run /briefbot digest schedule here to resume"
)


def api_base(settings: SlackSettings, environ: Mapping[str, str] | None = None) -> str:
    """The Web API base URL (ending in ``/``): ``SLACK_API_BASE``, else ``[slack]
    api_base``."""
    env = os.environ if environ is None else environ
    base = (env.get(ENV_API_BASE) or settings.api_base or SLACK_API).strip()
    url = yarl.URL(base)
    if url.scheme not in ("http", "https") or not url.host:
        source = ENV_API_BASE if env.get(ENV_API_BASE) else "slack.api_base"
        raise ConfigError(f"{base!r} is not an http(s) URL (e.g. {SLACK_API})", key=source)
    return base if base.endswith("/") else base + "/"


@dataclass(frozen=True)
class SlackCredentials:
    """What the environment gives; see the module docstring for the three modes."""

    signing_secret: str | None = None
    bot_token: str | None = None
    app_token: str | None = None
    client_id: str | None = None
    client_secret: str | None = None
    secret_key: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> SlackCredentials | None:
        """The credentials, None when Slack is not configured at all, ConfigError (one
        line saying what is missing) when half-configured."""
        creds = cls(
            signing_secret=secret("SLACK_SIGNING_SECRET", environ),
            bot_token=secret("SLACK_BOT_TOKEN", environ),
            app_token=secret("SLACK_APP_TOKEN", environ),
            client_id=secret("SLACK_CLIENT_ID", environ),
            client_secret=secret("SLACK_CLIENT_SECRET", environ),
            secret_key=secret(ENV_SECRET_KEY, environ),
        )
        if not (creds.bot_token or creds.client_id or creds.client_secret or creds.app_token):
            return None
        creds.check()
        return creds

    @property
    def multi(self) -> bool:
        return self.bot_token is None

    @property
    def socket_mode(self) -> bool:
        return self.app_token is not None

    def check(self) -> None:
        if self.bot_token:
            if not self.bot_token.startswith(("xoxb-", "xoxp-")) and "-" not in self.bot_token:
                raise ConfigError("not a bot token (it starts with xoxb-)", key="SLACK_BOT_TOKEN")
            if not self.signing_secret and not self.socket_mode:
                raise ConfigError(
                    "is not set: Slack mode needs it with SLACK_BOT_TOKEN (Basic Information "
                    "→ App Credentials → Signing Secret), or set SLACK_APP_TOKEN for Socket Mode",
                    key="SLACK_SIGNING_SECRET",
                )
            return
        if self.app_token and not (self.client_id or self.client_secret):
            raise ConfigError(
                "is not set: Socket Mode (SLACK_APP_TOKEN) needs the bot token too",
                key="SLACK_BOT_TOKEN",
            )
        missing = [
            name
            for name, value in (
                ("SLACK_CLIENT_ID", self.client_id),
                ("SLACK_CLIENT_SECRET", self.client_secret),
                ("SLACK_SIGNING_SECRET", self.signing_secret),
                (ENV_SECRET_KEY, self.secret_key),
            )
            if not value
        ]
        if missing:
            raise ConfigError(
                f"{', '.join(missing)} not set: serving many workspaces (OAuth) needs "
                f"SLACK_CLIENT_ID, SLACK_CLIENT_SECRET, SLACK_SIGNING_SECRET and {ENV_SECRET_KEY}"
                " (or set SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET for one workspace)",
                key="Slack",
            )


def web_client(base: str, token: str | None = None) -> AsyncWebClient:
    """A client for commands: waits out 429s and retries a dropped connection once (its
    calls are reads, modals and replies; posting deliveries uses :func:`posting_client`)."""
    return AsyncWebClient(
        token=token,
        base_url=base,
        retry_handlers=[
            AsyncRateLimitErrorRetryHandler(max_retry_count=2),
            AsyncConnectionErrorRetryHandler(max_retry_count=1),
        ],
    )


class SlackBot:
    """The Bolt app, its listeners, its server (HTTP or Socket Mode) and the sink."""

    def __init__(
        self,
        app: App,
        credentials: SlackCredentials,
        *,
        host: str | None = None,
        port: int | None = None,
        ack_within: float | None = None,
    ) -> None:
        self.app = app
        self.settings = app.settings.slack
        self.credentials = credentials
        self.api_base = api_base(self.settings)
        self.host = host if host is not None else self.settings.host
        self.port = port if port is not None else self.settings.port
        self.installations: SqlInstallationStore | None = None
        self.bolt = self._build_bolt()
        perms = Permissions(self.settings.managers, self.settings.admin_cache_seconds)
        self.commands = SlackCommands(
            app.service, perms, default_time=app.settings.digest.default_time
        )
        if ack_within is not None:
            self.commands.ack_within = ack_within
        self._register()
        self.sink = SlackSink(self.client_for)
        self._posting: dict[str, AsyncWebClient] = {}
        self._runner: web.AppRunner | None = None
        self._socket: Any = None
        self.bound_port: int | None = None

    # -- Bolt -------------------------------------------------------------------------

    def _build_bolt(self) -> AsyncApp:
        creds = self.credentials
        client = web_client(self.api_base, creds.bot_token)
        if not creds.multi:
            return AsyncApp(  # the token is the client's
                signing_secret=creds.signing_secret or "socket-mode",
                client=client,
                request_verification_enabled=not creds.socket_mode,
                name="briefbot",
            )
        storage = self.app.storage
        from bot.storage.sql import SqlStorage

        if not isinstance(storage, SqlStorage):  # pragma: no cover - always SQL in practice
            raise ConfigError("serving many Slack workspaces needs the SQL storage")
        assert creds.secret_key is not None
        self.installations = SqlInstallationStore(storage, creds.secret_key)
        oauth = AsyncOAuthSettings(
            client_id=creds.client_id,
            client_secret=creds.client_secret,
            scopes=list(BOT_SCOPES),
            install_path=INSTALL_PATH,
            redirect_uri_path=REDIRECT_PATH,
            installation_store=self.installations,
            installation_store_bot_only=True,
            state_store=MemoryStateStore(),
        )
        return AsyncApp(
            signing_secret=creds.signing_secret,
            client=client,
            installation_store=self.installations,
            oauth_settings=oauth,
            request_verification_enabled=not creds.socket_mode,
            name="briefbot",
        )

    def _register(self) -> None:
        bolt, cmds = self.bolt, self.commands
        bolt.command(COMMAND)(cmds.on_command)
        bolt.action(PICK_ACTION)(cmds.on_pick)
        for callback in (TRACK_VIEW, SCHEDULE_VIEW, IMPORT_VIEW):
            bolt.view(callback)(cmds.on_view)
        bolt.options(TZ_ACTION)(cmds.tz_options)
        bolt.event("app_uninstalled")(self.on_uninstalled)
        bolt.event("tokens_revoked")(self.on_tokens_revoked)

    async def on_uninstalled(self, body: dict[str, Any]) -> None:
        self.commands.track()  # finished before a shutdown completes
        await self.forget_workspace(body.get("enterprise_id"), body.get("team_id"))

    async def on_tokens_revoked(self, body: dict[str, Any], event: dict[str, Any]) -> None:
        self.commands.track()
        if (event.get("tokens") or {}).get("bot"):
            await self.forget_workspace(body.get("enterprise_id"), body.get("team_id"))

    async def forget_workspace(self, enterprise_id: str | None, team_id: str | None) -> None:
        """Delete the workspace's installation and pause its channels."""
        if self.installations is not None:
            await self.installations.async_delete_all(enterprise_id=enterprise_id, team_id=team_id)
        paused = 0
        for channel in await self.app.storage.all_channels(PLATFORM):
            if team_id and channel.guild_id == team_id and not channel.paused_reason:
                await self.app.storage.set_paused(channel.id, UNINSTALLED)
                paused += 1
        log.warning(
            "Briefbot was uninstalled from Slack workspace %s: %d channels paused", team_id, paused
        )

    # -- delivery ---------------------------------------------------------------------

    async def client_for(self, team_id: str | None) -> AsyncWebClient:
        """A posting client with the bot token of ``team_id``'s workspace."""
        token = self.credentials.bot_token
        if token is None:
            assert self.installations is not None
            bot = await self.installations.async_find_bot(enterprise_id=None, team_id=team_id)
            if bot is None:
                raise DeliveryError(
                    f"Briefbot is not installed in Slack workspace {team_id} (any more)",
                    permanent=True,
                )
            token = bot.bot_token
        client = self._posting.get(token)
        if client is None:
            client = self._posting[token] = posting_client(token, self.api_base)
        return client

    async def mark_pending_suspect(self) -> None:
        """Deliveries pending at start-up may have been posted by the last process just
        before it stopped: the sink looks for them in the channel before posting."""
        slack_ids = {c.id for c in await self.app.storage.all_channels(PLATFORM)}
        for delivery in await self.app.storage.pending_deliveries():
            if delivery.channel_id in slack_ids:
                self.sink.suspect.add(delivery.nonce)

    # -- serving ----------------------------------------------------------------------

    def web_app(self) -> web.Application:
        """The aiohttp application: ``/slack/events`` (and the OAuth pages)."""
        server = AsyncSlackAppServer(
            port=self.port, path=EVENTS_PATH, app=self.bolt, host=self.host
        )
        return server.web_app

    async def check_token(self) -> None:
        """One workspace: ask ``auth.test`` whether Slack takes the bot token (a refused
        token is a ConfigError, exit status 2; Slack unreachable is only logged)."""
        if self.credentials.multi:
            return
        try:
            found = await self.bolt.client.auth_test()
        except SlackApiError as err:
            code = error_code(err)
            if code in ("invalid_auth", "not_authed", "account_inactive", "token_revoked"):
                raise ConfigError(
                    f"Slack refused the token ({code}): set SLACK_BOT_TOKEN to the Bot User "
                    "OAuth Token (your app → OAuth & Permissions, it starts with xoxb-)",
                    key="SLACK_BOT_TOKEN",
                ) from None
            log.warning("Slack auth.test failed: %s", err)
        except (aiohttp.ClientError, OSError, TimeoutError) as err:
            log.warning("Slack is not reachable at %s yet: %s", self.api_base, err)
        else:
            log.info(
                "Slack: workspace %s (%s), bot %s",
                found.get("team"),
                found.get("team_id"),
                found.get("user_id"),
            )

    async def start(self) -> None:
        """Check the token, register the sink, then listen (HTTP) or connect (Socket
        Mode); then send what is pending, once."""
        await self.check_token()
        await self.mark_pending_suspect()
        self.app.add_sink(PLATFORM, self.sink)
        if self.credentials.socket_mode:
            from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler

            self._socket = AsyncSocketModeHandler(self.bolt, self.credentials.app_token)
            await self._socket.connect_async()
            log.info("Slack: connected in Socket Mode")
        if not self.credentials.socket_mode or self.credentials.multi:
            # HTTP: every request; in Socket Mode with OAuth, the install pages only
            self._runner = web.AppRunner(self.web_app(), access_log=None)
            await self._runner.setup()
            site = web.TCPSite(self._runner, self.host, self.port)
            try:
                await site.start()
            except OSError as err:
                await self._runner.cleanup()
                self._runner = None
                raise ConfigError(
                    f"cannot listen on {self.host}:{self.port}: {err.strerror or err}",
                    key="slack.port",
                ) from None
            server = site._server
            sockets = getattr(server, "sockets", None) or []
            self.bound_port = sockets[0].getsockname()[1] if sockets else self.port
            log.info("Slack: listening on http://%s:%s%s", self.host, self.bound_port, EVENTS_PATH)
        sent = await self.app.outbox.retry_pending(force=True)
        if sent:
            log.info("sent %d pending Slack deliveries after starting", sent)

    async def stop(self) -> None:
        if self.app.sinks.get(PLATFORM) is self.sink:
            del self.app.sinks[PLATFORM]
        await self.commands.drain(DRAIN_TIMEOUT)
        if self._socket is not None:
            with contextlib.suppress(Exception):
                await self._socket.close_async()
            self._socket = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def run(self) -> None:
        """Start, then serve until cancelled; stop cleanly."""
        try:
            await self.start()
            await asyncio.Event().wait()
        finally:
            await self.stop()


async def start_slack(app: App, credentials: SlackCredentials, **options: Any) -> None:
    """Run Briefbot on Slack until cancelled (``briefbot run``)."""
    await SlackBot(app, credentials, **options).run()
