"""FakeDiscord: Discord's REST API v10 and gateway, served on 127.0.0.1 for tests.

The real discord.py client logs in to it (see ``redirect_discord`` in
``fakediscord.client``), so what a test asserts is what discord.py really sent and
how it really reacted to Discord's answers. See README.md for the API.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import email.parser
import email.policy
import hashlib
import json
import math
import mimetypes
import re
import secrets
import time
import traceback
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from . import validation as v
from .faults import Scripted
from .gateway import (
    DIRECT_MESSAGES,
    GUILD_MEMBERS,
    GUILD_MESSAGES,
    GUILD_PRESENCES,
    INVALID_SESSION,
    MESSAGE_CONTENT,
    PRIVILEGED_INTENTS,
    RECONNECT,
    Gateway,
)
from .gateway import HEARTBEAT as OP_HEARTBEAT
from .models import (
    ADMINISTRATOR,
    APPLICATION_COMMAND,
    APPLICATION_COMMAND_AUTOCOMPLETE,
    ATTACH_FILES,
    DEFAULT_BOT_ROLE,
    DEFAULT_EVERYONE,
    DM,
    EPHEMERAL,
    LOADING,
    MANAGE_GUILD,
    MANAGE_MESSAGES,
    MENTION_EVERYONE,
    MESSAGE_COMPONENT,
    MODAL_SUBMIT,
    PING,
    SEND_MESSAGES,
    VIEW_CHANNEL,
    FakeChannel,
    FakeGuild,
    FakeMember,
    FakeRole,
    FakeUser,
    Snowflakes,
    compute_permissions,
    iso,
    shard_for,
)
from .recording import GatewayFrame, Log, RecordedRequest, UploadedFile

JSON_TYPE = "application/json"
#: message flags a sender may set (SUPPRESS_EMBEDS, EPHEMERAL, SUPPRESS_NOTIFICATIONS, IS_VOICE,
#: IS_COMPONENTS_V2)
SETTABLE_FLAGS = (1 << 2) | EPHEMERAL | (1 << 12) | (1 << 13) | (1 << 15)
#: allowed callback types per interaction type
CALLBACK_TYPES = {
    PING: {1},
    APPLICATION_COMMAND: {4, 5, 9},
    MESSAGE_COMPONENT: {4, 5, 6, 7, 9},
    APPLICATION_COMMAND_AUTOCOMPLETE: {8},
    MODAL_SUBMIT: {4, 5, 6, 7},
}
MENTION_USER_RE = re.compile(r"<@!?(\d+)>")
MENTION_ROLE_RE = re.compile(r"<@&(\d+)>")


class Reply(Exception):
    """Raised by a route handler to answer with an error (or any) status and body."""

    def __init__(self, status: int, body: Any = None) -> None:
        super().__init__(status, body)
        self.status = status
        self.body = body


def discord_error(status: int, code: int, message: str) -> Reply:
    return Reply(status, {"message": message, "code": code})


@dataclass
class _Bucket:
    limit: int
    window: float
    remaining: int
    reset_at: float


@dataclass
class _Route:
    method: str
    pattern: re.Pattern[str]
    handler: Callable[[RecordedRequest, re.Match[str]], Awaitable[tuple[int, Any]]]
    bucket: str
    auth: bool


@dataclass
class _MessageMeta:
    channel_id: int
    guild_id: int | None
    created: float
    author_id: int
    nonce_key: tuple[int, str] | None = None
    ephemeral: bool = False
    interaction_id: int | None = None
    deleted: bool = False


@dataclass
class FakeInteraction:
    """An interaction the fake delivered, and what the client answered."""

    id: int
    token: str
    type: int
    payload: dict[str, Any]
    guild_id: int | None
    channel_id: int
    user: FakeUser
    created_at: float
    command_name: str | None = None
    message_id: int | None = None  #: the message a component sits on
    response_type: int | None = None
    callback: RecordedRequest | None = None
    original_message_id: int | None = None
    followup_ids: list[int] = field(default_factory=list)
    responded: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    async def wait_response(self, timeout: float = 5.0) -> RecordedRequest:  # noqa: ASYNC109
        """The callback POST the client answered this interaction with."""
        try:
            await asyncio.wait_for(self.responded.wait(), timeout)
        except TimeoutError:
            raise AssertionError(
                f"interaction {self.command_name or self.type} got no response in {timeout}s"
            ) from None
        assert self.callback is not None
        return self.callback

    @property
    def response_data(self) -> dict[str, Any]:
        assert self.callback is not None
        assert isinstance(self.callback.json, dict)
        return self.callback.json.get("data") or {}


class FakeDiscord:
    """A loopback Discord. Use ``async with FakeDiscord() as fake`` or start()/close()."""

    def __init__(
        self,
        *,
        token: str = "fake-bot-token.Briefbot.0123456789",
        shard_count: int = 2,
        heartbeat_interval: int = 41250,
        guild_count: int = 2,
        interaction_ack_timeout: float = 3.0,
        interaction_token_ttl: float = 15 * 60,
        nonce_window: float = 5 * 60,
        enforce_rate_limits: bool = True,
        privileged_intents: int = PRIVILEGED_INTENTS,
        max_concurrency: int = 1,
    ) -> None:
        self.token = token
        self.shard_count = shard_count
        self.heartbeat_interval = heartbeat_interval
        self.interaction_ack_timeout = interaction_ack_timeout
        self.interaction_token_ttl = interaction_token_ttl
        self.nonce_window = nonce_window
        self.enforce_rate_limits = enforce_rate_limits
        self.privileged_intents = privileged_intents
        self.max_concurrency = max_concurrency

        self.ids = Snowflakes()
        self.bot_user = FakeUser(self.ids.next(), "Briefbot", bot=True)
        self.application_id = self.bot_user.id
        self.owner = FakeUser(self.ids.next(), "owner", global_name="Guild Owner")
        self.admin = FakeUser(self.ids.next(), "admin", global_name="Server Admin")
        self.reader = FakeUser(self.ids.next(), "reader", global_name="Reader")
        self.users: dict[int, FakeUser] = {
            u.id: u for u in (self.bot_user, self.owner, self.admin, self.reader)
        }
        self.guilds: dict[int, FakeGuild] = {}
        self.dm_channels: dict[int, FakeChannel] = {}
        for i in range(guild_count):
            self.add_guild(f"Guild {i}", shard_id=i % shard_count)

        self.global_commands: list[dict[str, Any]] = []
        self.guild_commands: dict[int, list[dict[str, Any]]] = {}
        self.messages: dict[int, dict[str, Any]] = {}
        self._meta: dict[int, _MessageMeta] = {}
        self._nonces: dict[tuple[int, str], int] = {}
        self.interactions: dict[int, FakeInteraction] = {}

        self.request_log: Log[RecordedRequest] = Log()
        self.gateway_log: Log[GatewayFrame] = Log()
        self.identify_log: list[dict[str, Any]] = []
        self.resume_log: list[dict[str, Any]] = []
        self.gateway_connects: list[dict[str, Any]] = []
        self.unhandled: list[RecordedRequest] = []
        self.internal_errors: list[str] = []

        self._scripts: list[tuple[str, re.Pattern[str], deque[Scripted]]] = []
        self.bucket_limits: dict[str, tuple[int, float]] = {
            "messages": (5, 5.0),
            "webhook": (5, 2.0),
            "default": (50, 1.0),
        }
        self._buckets: dict[str, _Bucket] = {}
        self.gateway = Gateway(self)
        self._routes = self._build_routes()
        self._runner: web.AppRunner | None = None
        self.port = 0

    # -- lifecycle -----------------------------------------------------------------

    async def start(self) -> FakeDiscord:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_get("/gateway", self.gateway.handle)
        app.router.add_get("/gateway/", self.gateway.handle)
        app.router.add_get("/resume", self.gateway.handle)
        app.router.add_get("/resume/", self.gateway.handle)
        app.router.add_route("*", r"/api/v{version:\d+}/{tail:.*}", self._rest)
        self._runner = web.AppRunner(
            app, access_log=None, handle_signals=False, shutdown_timeout=0.1
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def close(self) -> None:
        await self.gateway.shutdown()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeDiscord:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_base(self) -> str:
        """What discord.py's ``Route.BASE`` must be: ``http://127.0.0.1:PORT/api/v10``."""
        return f"{self.base_url}/api/v10"

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/gateway"

    @property
    def resume_gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/resume"

    # -- the world ----------------------------------------------------------------

    @property
    def application_flags(self) -> int:
        flags = 1 << 23  # APPLICATION_COMMAND_BADGE
        if self.privileged_intents & GUILD_PRESENCES:
            flags |= 1 << 13
        if self.privileged_intents & GUILD_MEMBERS:
            flags |= 1 << 15
        if self.privileged_intents & MESSAGE_CONTENT:
            flags |= 1 << 19
        return flags

    def bot_user_payload(self) -> dict[str, Any]:
        data = self.bot_user.to_payload()
        data.update(verified=True, mfa_enabled=False, email=None, locale="en-US", bio="")
        return data

    def add_guild(
        self,
        name: str,
        *,
        shard_id: int | None = None,
        channels: Iterable[str] = ("general", "news"),
        shard_count: int | None = None,
    ) -> FakeGuild:
        """Add a guild the bot is in (before the client connects; see :meth:`join_guild`).

        Its id is picked so the guild lands on ``shard_id`` (round-robin if None). The
        guild has @everyone, a ``Moderators`` role (Manage Server), the bot's managed
        role, text channels, and the members owner, admin (Moderators), reader and the bot.
        """
        count = shard_count or self.shard_count
        if shard_id is None:
            shard_id = len(self.guilds) % count
        gid = self.ids.next()
        ms = gid >> 22
        ms += (shard_id - ms % count) % count
        gid = (ms << 22) | (gid & 0x3FFFFF)
        self.ids._last = max(self.ids._last, gid)
        everyone = FakeRole(gid, "@everyone", DEFAULT_EVERYONE, position=0)
        mods = FakeRole(self.ids.next(), "Moderators", DEFAULT_EVERYONE | MANAGE_GUILD, position=1)
        bot_role = FakeRole(
            self.ids.next(),
            "Briefbot",
            DEFAULT_BOT_ROLE,
            position=2,
            managed=True,
            bot_id=self.bot_user.id,
        )
        guild = FakeGuild(
            id=gid, name=name, owner_id=self.owner.id, roles=[everyone, mods, bot_role]
        )
        for pos, cname in enumerate(channels):
            guild.channels.append(FakeChannel(self.ids.next(), cname, guild_id=gid, position=pos))
        guild.members = [
            FakeMember(self.owner),
            FakeMember(self.admin, role_ids=[mods.id]),
            FakeMember(self.reader),
            FakeMember(self.bot_user, role_ids=[bot_role.id]),
        ]
        guild.member_count = len(guild.members)
        self.guilds[gid] = guild
        return guild

    @property
    def guild_list(self) -> list[FakeGuild]:
        return list(self.guilds.values())

    def channel(self, channel_id: int) -> FakeChannel | None:
        for g in self.guilds.values():
            ch = g.channel(channel_id)
            if ch is not None:
                return ch
        return self.dm_channels.get(channel_id)

    def guild_of(self, channel_id: int) -> FakeGuild | None:
        ch = self.channel(channel_id)
        return None if ch is None or ch.guild_id is None else self.guilds.get(ch.guild_id)

    def client_shard_count(self) -> int:
        for s in self.gateway.shard_sessions.values():
            return s.shard_count
        return self.shard_count

    def shard_of(self, guild_id: int) -> int:
        return shard_for(guild_id, self.client_shard_count())

    def bot_permissions(self, guild: FakeGuild, channel: FakeChannel | None) -> int:
        member = guild.member(self.bot_user.id)
        assert member is not None
        return compute_permissions(guild, member, channel)

    # -- test helpers: gateway -------------------------------------------------

    async def dispatch(
        self, event: str, data: Any, *, guild_id: int | None = None, shard_id: int | None = None
    ) -> int:
        """Send a DISPATCH (op 0) to the shard owning ``guild_id`` (shard 0 if no guild).

        If that shard's socket is down, the event is buffered and replayed on RESUME.
        Returns the sequence number.
        """
        if shard_id is None:
            shard_id = 0 if guild_id is None else self.shard_of(guild_id)
        return await self.gateway.dispatch(shard_id, event, data)

    def drop_gateway(self, shard_id: int | None = None) -> int:
        """Kill the shard's TCP connection (all shards if None) with no close frame.

        The session stays resumable: discord.py reconnects to ``resume_gateway_url``
        and RESUMEs. Returns how many sockets were dropped.
        """
        return self.gateway.drop(shard_id)

    def hold_gateway(self) -> None:
        """A gateway outage: from now on, new gateway connections (a reconnect, a RESUME)
        wait without HELLO until :meth:`release_gateway`. REST keeps working. Combine with
        :meth:`drop_gateway` to keep a shard disconnected while a test acts."""
        self.gateway.hold()

    def release_gateway(self) -> None:
        self.gateway.release()

    async def close_gateway(
        self, shard_id: int | None = None, code: int = 4000, reason: str = "Unknown error"
    ) -> int:
        """Close with a close frame. 4000-4003/4005/4008 are resumable; 4004 (bad token),
        4010-4014 are fatal to discord.py (it raises and the client closes)."""
        return await self.gateway.close(shard_id, code, reason)

    async def request_reconnect(self, shard_id: int | None = None) -> int:
        """Send op 7 RECONNECT: the client closes and RESUMEs."""
        return await self.gateway.send_op(shard_id, RECONNECT, None)

    async def invalidate_session(
        self, shard_id: int | None = None, *, resumable: bool = False
    ) -> int:
        """Send op 9 INVALID_SESSION; with ``resumable=False`` the client must IDENTIFY anew
        (discord.py then connects to ``DiscordWebSocket.DEFAULT_GATEWAY``)."""
        return await self.gateway.send_op(shard_id, INVALID_SESSION, resumable)

    async def request_heartbeat(self, shard_id: int | None = None) -> int:
        return await self.gateway.send_op(shard_id, OP_HEARTBEAT, None)

    async def join_guild(self, name: str, **kwargs: Any) -> FakeGuild:
        """The bot is added to a new guild: GUILD_CREATE (no ``unavailable`` key)."""
        guild = self.add_guild(name, shard_count=self.client_shard_count(), **kwargs)
        shard = self.shard_of(guild.id)
        members = self.gateway.wants(shard, GUILD_MEMBERS)
        await self.dispatch(
            "GUILD_CREATE",
            guild.to_payload(bot_user_id=self.bot_user.id, members_intent=members),
            guild_id=guild.id,
        )
        return guild

    async def remove_guild(self, guild_id: int, *, outage: bool = False) -> None:
        """The bot was removed (GUILD_DELETE ``{id}``) or the guild went down (``outage``)."""
        data: dict[str, Any] = {"id": str(guild_id)}
        if outage:
            data["unavailable"] = True
        else:
            self.guilds.pop(guild_id, None)
        await self.dispatch("GUILD_DELETE", data, guild_id=guild_id)

    async def send_user_message(
        self, channel_id: int, content: str, *, user: FakeUser | None = None
    ) -> dict[str, Any]:
        """A human posts in a channel: MESSAGE_CREATE. As on Discord, without the
        MESSAGE_CONTENT intent the bot gets empty content unless it is mentioned."""
        user = user or self.reader
        channel = self._require_channel(channel_id)
        msg = self._build_message(channel, {"content": content}, [], author=user)
        self._store(msg, channel, author_id=user.id)
        await self._gateway_message_event("MESSAGE_CREATE", msg, channel)
        return msg

    # -- test helpers: REST assertions and faults -----------------------------

    def script(self, method: str, path: str, *answers: Scripted) -> None:
        """Queue answers for the next requests matching ``method`` and the path regex
        (full match, relative to the API base, e.g. ``r"/channels/\\d+/messages"``)."""
        self._scripts.append((method.upper(), re.compile(path), deque(answers)))

    def pending_scripts(self) -> int:
        return sum(len(q) for _, _, q in self._scripts)

    def set_rate_limit(self, bucket: str, limit: int, window: float) -> None:
        """Bucket names: ``messages`` (per channel), ``webhook`` (per token), ``default``."""
        self.bucket_limits[bucket] = (limit, window)

    def requests(self, method: str | None = None, path: str | None = None) -> list[RecordedRequest]:
        return [r for r in self.request_log if r.matches(method, path)]

    async def wait_for_request(
        self,
        method: str | None,
        path: str,
        timeout: float = 5.0,  # noqa: ASYNC109
        predicate: Callable[[RecordedRequest], bool] | None = None,
    ) -> RecordedRequest:
        """The first matching request not returned by an earlier call (past ones count)."""
        pattern = re.compile(path)

        def pred(r: RecordedRequest) -> bool:
            return r.matches(method, pattern) and (predicate is None or predicate(r))

        return await self.request_log.wait(pred, timeout, f"{method} {path}")

    async def wait_for_gateway(
        self,
        *,
        op: int | None = None,
        event: str | None = None,
        shard_id: int | None = None,
        direction: str = "recv",
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> GatewayFrame:
        """A gateway frame the client sent (``direction="recv"``) or the fake sent."""

        def pred(f: GatewayFrame) -> bool:
            return (
                f.direction == direction
                and (op is None or f.op == op)
                and (event is None or f.t == event)
                and (shard_id is None or f.shard_id == shard_id)
            )

        return await self.gateway_log.wait(
            pred, timeout, f"gateway op={op} t={event} shard={shard_id}"
        )

    def channel_messages(
        self, channel_id: int, *, include_ephemeral: bool = True
    ) -> list[dict[str, Any]]:
        """Messages that exist in a channel now (oldest first)."""
        return [
            m
            for mid, m in self.messages.items()
            if self._meta[mid].channel_id == channel_id
            and not self._meta[mid].deleted
            and (include_ephemeral or not self._meta[mid].ephemeral)
        ]

    # -- test helpers: interactions ------------------------------------------

    def find_command(self, name: str, guild_id: int | None) -> dict[str, Any]:
        pools = []
        if guild_id is not None:
            pools.append(self.guild_commands.get(guild_id, []))
        pools.append(self.global_commands)
        for pool in pools:
            for cmd in pool:
                if cmd["name"] == name and cmd.get("type", 1) == 1:
                    return cmd
        raise LookupError(
            f"/{name} is not registered for guild {guild_id} or globally: Discord only "
            "delivers registered commands (did the client sync its CommandTree?)"
        )

    async def send_interaction(
        self,
        command: str,
        options: dict[str, Any] | None = None,
        *,
        guild_id: int | None = None,
        channel_id: int | None = None,
        user: FakeUser | None = None,
        permissions: int | None = None,
        locale: str = "en-US",
        dm: bool = False,
    ) -> FakeInteraction:
        """Deliver an APPLICATION_COMMAND (type 2) interaction for a *registered* command.

        ``command`` is the qualified name (``"watch add"`` = command ``watch``,
        subcommand ``add``; ``"a b c"`` = group ``b``, subcommand ``c``). ``options``
        maps option names to values, typed from the registered schema (users, roles,
        channels may be given as Fake* objects or ids and are put in ``resolved``).
        ``permissions`` overrides the member's computed channel permissions.
        """
        return await self._command_interaction(
            APPLICATION_COMMAND,
            command,
            options or {},
            None,
            guild_id=guild_id,
            channel_id=channel_id,
            user=user,
            permissions=permissions,
            locale=locale,
            dm=dm,
        )

    async def send_autocomplete(
        self,
        command: str,
        options: dict[str, Any],
        focused: str,
        *,
        guild_id: int | None = None,
        channel_id: int | None = None,
        user: FakeUser | None = None,
        locale: str = "en-US",
        dm: bool = False,
    ) -> FakeInteraction:
        """Deliver an APPLICATION_COMMAND_AUTOCOMPLETE (type 4): ``focused`` names the
        option being typed, whose partial value is ``options[focused]``."""
        return await self._command_interaction(
            APPLICATION_COMMAND_AUTOCOMPLETE,
            command,
            options,
            focused,
            guild_id=guild_id,
            channel_id=channel_id,
            user=user,
            permissions=None,
            locale=locale,
            dm=dm,
        )

    async def send_component(
        self,
        message_id: int,
        custom_id: str,
        *,
        component_type: int = 2,
        values: list[str] | None = None,
        user: FakeUser | None = None,
        permissions: int | None = None,
    ) -> FakeInteraction:
        """A user clicks a button (2) / picks from a select (3...) on a message the bot sent."""
        msg = self.messages[message_id]
        meta = self._meta[message_id]
        data: dict[str, Any] = {"custom_id": custom_id, "component_type": component_type}
        if values is not None:
            data["values"] = values
        return await self._deliver(
            MESSAGE_COMPONENT,
            data,
            guild_id=meta.guild_id,
            channel_id=meta.channel_id,
            user=user,
            permissions=permissions,
            locale="en-US",
            dm=meta.guild_id is None,
            message=msg,
        )

    async def send_modal_submit(
        self,
        custom_id: str,
        fields: dict[str, str],
        *,
        guild_id: int | None = None,
        channel_id: int | None = None,
        user: FakeUser | None = None,
    ) -> FakeInteraction:
        rows = [
            {"type": 1, "components": [{"type": 4, "custom_id": k, "value": val}]}
            for k, val in fields.items()
        ]
        return await self._deliver(
            MODAL_SUBMIT,
            {"custom_id": custom_id, "components": rows},
            guild_id=guild_id,
            channel_id=channel_id,
            user=user,
            permissions=None,
            locale="en-US",
            dm=False,
        )

    async def _command_interaction(
        self,
        itype: int,
        command: str,
        options: dict[str, Any],
        focused: str | None,
        *,
        guild_id: int | None,
        channel_id: int | None,
        user: FakeUser | None,
        permissions: int | None,
        locale: str,
        dm: bool,
    ) -> FakeInteraction:
        parts = command.split()
        if not dm and guild_id is None:
            guild_id = self.guild_list[0].id
        cmd = self.find_command(parts[0], None if dm else guild_id)
        guild = None if dm or guild_id is None else self.guilds[guild_id]
        resolved: dict[str, dict[str, Any]] = {}
        built = self._build_options(
            cmd.get("options") or [],
            parts[1:],
            dict(options),
            focused,
            resolved,
            guild,
            check_required=itype == APPLICATION_COMMAND,
        )
        data: dict[str, Any] = {"id": cmd["id"], "name": cmd["name"], "type": 1}
        if built:
            data["options"] = built
        if resolved:
            data["resolved"] = resolved
        if "guild_id" in cmd:
            data["guild_id"] = cmd["guild_id"]
        inter = await self._deliver(
            itype,
            data,
            guild_id=None if dm else guild_id,
            channel_id=channel_id,
            user=user,
            permissions=permissions,
            locale=locale,
            dm=dm,
        )
        inter.command_name = command
        return inter

    def _build_options(
        self,
        schema: list[dict[str, Any]],
        path: list[str],
        values: dict[str, Any],
        focused: str | None,
        resolved: dict[str, dict[str, Any]],
        guild: FakeGuild | None,
        *,
        check_required: bool,
    ) -> list[dict[str, Any]]:
        by_name = {o["name"]: o for o in schema}
        if path:
            opt = by_name.get(path[0])
            if opt is None or opt["type"] not in (1, 2):
                raise ValueError(f"no subcommand (group) {path[0]!r}; have {sorted(by_name)}")
            inner = self._build_options(
                opt.get("options") or [],
                path[1:],
                values,
                focused,
                resolved,
                guild,
                check_required=check_required,
            )
            entry: dict[str, Any] = {"name": opt["name"], "type": opt["type"]}
            entry["options"] = inner
            return [entry]
        if any(o["type"] in (1, 2) for o in schema):
            raise ValueError(f"command needs a subcommand: one of {sorted(by_name)}")
        out = []
        for name, value in values.items():
            opt = by_name.get(name)
            if opt is None:
                raise ValueError(f"no option {name!r}; have {sorted(by_name)}")
            out.append(self._option_value(opt, value, name == focused, resolved, guild))
        if check_required:
            missing = [o["name"] for o in schema if o.get("required") and o["name"] not in values]
            if missing:
                raise ValueError(f"required options missing: {missing}")
        return out

    def _option_value(
        self,
        opt: dict[str, Any],
        value: Any,
        is_focused: bool,
        resolved: dict[str, dict[str, Any]],
        guild: FakeGuild | None,
    ) -> dict[str, Any]:
        otype = opt["type"]
        entry: dict[str, Any] = {"name": opt["name"], "type": otype}
        if is_focused:
            entry["value"] = value if isinstance(value, str) else str(value)
            entry["focused"] = True
            return entry
        if otype == 3:
            entry["value"] = str(value)
        elif otype == 4:
            entry["value"] = int(value)
        elif otype == 10:
            entry["value"] = float(value)
        elif otype == 5:
            entry["value"] = bool(value)
        elif otype in (6, 7, 8, 9):
            oid = int(getattr(value, "id", value))
            entry["value"] = str(oid)
            self._resolve(oid, otype, resolved, guild)
        else:
            raise ValueError(f"option type {otype} not supported by the fake")
        choices = opt.get("choices")
        if choices and entry["value"] not in [c["value"] for c in choices]:
            raise ValueError(f"{value!r} is not one of the choices of {opt['name']!r}")
        return entry

    def _resolve(
        self, oid: int, otype: int, resolved: dict[str, dict[str, Any]], guild: FakeGuild | None
    ) -> None:
        key = str(oid)
        user = self.users.get(oid)
        if otype in (6, 9) and user is not None:
            resolved.setdefault("users", {})[key] = user.to_payload()
            member = guild.member(oid) if guild else None
            if member is not None and guild is not None:
                mdata = member.to_payload(with_user=False)
                mdata["permissions"] = str(compute_permissions(guild, member, None))
                resolved.setdefault("members", {})[key] = mdata
            return
        if otype in (8, 9) and guild is not None:
            with contextlib.suppress(StopIteration):
                resolved.setdefault("roles", {})[key] = guild.role(oid).to_payload()
                return
        if otype == 7:
            ch = self.channel(oid)
            if ch is not None:
                cdata = ch.to_payload()
                if guild is not None:
                    cdata["permissions"] = str(self.bot_permissions(guild, ch))
                resolved.setdefault("channels", {})[key] = cdata
                return
        raise ValueError(f"cannot resolve id {oid} for option type {otype}")

    async def _deliver(
        self,
        itype: int,
        data: dict[str, Any],
        *,
        guild_id: int | None,
        channel_id: int | None,
        user: FakeUser | None,
        permissions: int | None,
        locale: str,
        dm: bool,
        message: dict[str, Any] | None = None,
    ) -> FakeInteraction:
        user = user or self.reader
        iid = self.ids.next()
        token = "aW50ZXJhY3Rpb246" + secrets.token_urlsafe(96)
        payload: dict[str, Any] = {
            "id": str(iid),
            "application_id": str(self.application_id),
            "type": itype,
            "data": data,
            "token": token,
            "version": 1,
            "locale": locale,
            "entitlements": [],
            "entitlement_sku_ids": [],
            "attachment_size_limit": 10 * 1024 * 1024,
        }
        if dm or guild_id is None:
            channel = self._dm_channel(user)
            payload.update(
                channel=channel.to_payload(),
                channel_id=str(channel.id),
                user=user.to_payload(),
                app_permissions=str(DEFAULT_EVERYONE),
                context=1,
                authorizing_integration_owners={"0": "0"},
            )
            guild_id = None
        else:
            guild = self.guilds[guild_id]
            channel = guild.channel(channel_id) if channel_id else guild.text_channels()[0]
            if channel is None:
                raise ValueError(f"channel {channel_id} is not in guild {guild_id}")
            member = guild.member(user.id) or FakeMember(user)
            perms = (
                compute_permissions(guild, member, channel) if permissions is None else permissions
            )
            mdata = member.to_payload()
            mdata["permissions"] = str(perms)
            cdata = channel.to_payload()
            cdata["permissions"] = str(perms)
            payload.update(
                guild={"id": str(guild.id), "locale": guild.preferred_locale, "features": []},
                guild_id=str(guild.id),
                guild_locale=guild.preferred_locale,
                channel=cdata,
                channel_id=str(channel.id),
                member=mdata,
                app_permissions=str(self.bot_permissions(guild, channel)),
                context=0,
                authorizing_integration_owners={"0": str(guild.id)},
            )
        if message is not None:
            payload["message"] = message
        inter = FakeInteraction(
            id=iid,
            token=token,
            type=itype,
            payload=payload,
            guild_id=guild_id,
            channel_id=channel.id,
            user=user,
            created_at=asyncio.get_running_loop().time(),
            message_id=int(message["id"]) if message else None,
        )
        self.interactions[iid] = inter
        await self.dispatch("INTERACTION_CREATE", payload, guild_id=guild_id)
        return inter

    def _dm_channel(self, user: FakeUser) -> FakeChannel:
        for ch in self.dm_channels.values():
            if ch.recipients and ch.recipients[0].id == user.id:
                return ch
        ch = FakeChannel(self.ids.next(), "", type=DM, recipients=[user])
        self.dm_channels[ch.id] = ch
        return ch

    # -- REST plumbing ------------------------------------------------------------

    def _build_routes(self) -> list[_Route]:
        app = r"/applications/(?P<app_id>\d+)"
        guild_cmds = app + r"/guilds/(?P<guild_id>\d+)/commands"
        chan = r"/channels/(?P<channel_id>\d+)"
        msg = chan + r"/messages/(?P<message_id>\d+)"
        hook = r"/webhooks/(?P<app_id>\d+)/(?P<token>[^/]+)"
        table: list[tuple[str, str, Any, str, bool]] = [
            ("GET", r"/gateway", self._get_gateway, "default", False),
            ("GET", r"/gateway/bot", self._get_gateway_bot, "default", True),
            ("GET", r"/users/@me", self._get_me, "default", True),
            ("POST", r"/users/@me/channels", self._create_dm, "default", True),
            ("DELETE", r"/users/@me/guilds/(?P<guild_id>\d+)", self._leave_guild, "default", True),
            ("GET", r"/users/(?P<user_id>\d+)", self._get_user, "default", True),
            ("GET", r"/oauth2/applications/@me", self._get_app, "default", True),
            ("GET", r"/applications/@me", self._get_app, "default", True),
            ("GET", app + r"/commands", self._list_commands, "default", True),
            ("PUT", app + r"/commands", self._put_commands, "default", True),
            ("POST", app + r"/commands", self._post_command, "default", True),
            ("GET", app + r"/commands/(?P<command_id>\d+)", self._get_command, "default", True),
            ("PATCH", app + r"/commands/(?P<command_id>\d+)", self._patch_command, "default", True),
            (
                "DELETE",
                app + r"/commands/(?P<command_id>\d+)",
                self._delete_command,
                "default",
                True,
            ),
            ("GET", guild_cmds, self._list_commands, "default", True),
            ("PUT", guild_cmds, self._put_commands, "default", True),
            ("POST", guild_cmds, self._post_command, "default", True),
            ("GET", guild_cmds + r"/(?P<command_id>\d+)", self._get_command, "default", True),
            ("PATCH", guild_cmds + r"/(?P<command_id>\d+)", self._patch_command, "default", True),
            ("DELETE", guild_cmds + r"/(?P<command_id>\d+)", self._delete_command, "default", True),
            ("GET", chan, self._get_channel, "default", True),
            ("POST", chan + r"/messages", self._create_message, "messages", True),
            ("GET", chan + r"/messages", self._list_messages, "default", True),
            ("GET", msg, self._get_message, "default", True),
            ("PATCH", msg, self._edit_message, "default", True),
            ("DELETE", msg, self._delete_message, "default", True),
            ("POST", chan + r"/typing", self._typing, "default", True),
            ("PUT", msg + r"/reactions/(?P<emoji>[^/]+)/@me", self._no_content, "default", True),
            ("DELETE", msg + r"/reactions/(?P<emoji>[^/]+)/@me", self._no_content, "default", True),
            ("GET", r"/guilds/(?P<guild_id>\d+)", self._get_guild, "default", True),
            (
                "GET",
                r"/guilds/(?P<guild_id>\d+)/channels",
                self._get_guild_channels,
                "default",
                True,
            ),
            ("GET", r"/guilds/(?P<guild_id>\d+)/roles", self._get_guild_roles, "default", True),
            (
                "GET",
                r"/guilds/(?P<guild_id>\d+)/members/(?P<user_id>\d+)",
                self._get_member,
                "default",
                True,
            ),
            (
                "POST",
                r"/interactions/(?P<interaction_id>\d+)/(?P<token>[^/]+)/callback",
                self._interaction_callback,
                "default",
                False,
            ),
            ("POST", hook, self._execute_webhook, "webhook", False),
            (
                "GET",
                hook + r"/messages/(?P<message_id>@original|\d+)",
                self._get_hook_msg,
                "webhook",
                False,
            ),
            (
                "PATCH",
                hook + r"/messages/(?P<message_id>@original|\d+)",
                self._edit_hook_msg,
                "webhook",
                False,
            ),
            (
                "DELETE",
                hook + r"/messages/(?P<message_id>@original|\d+)",
                self._del_hook_msg,
                "webhook",
                False,
            ),
        ]
        return [_Route(m, re.compile(p), h, b, a) for m, p, h, b, a in table]

    @staticmethod
    def _parse_body(content_type: str, body: bytes) -> tuple[Any, list[UploadedFile]]:
        ctype = content_type.split(";", maxsplit=1)[0].strip().lower()
        if ctype == "application/json":
            return (json.loads(body) if body else None), []
        if ctype == "multipart/form-data":
            raw = b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body
            msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(raw)
            payload: Any = None
            files: list[UploadedFile] = []
            for part in msg.iter_parts():
                name = part.get_param("name", header="content-disposition")
                filename = part.get_filename()
                data = part.get_payload(decode=True) or b""
                if name == "payload_json":
                    payload = json.loads(data)
                elif filename is not None:
                    files.append(UploadedFile(str(name), filename, part.get_content_type(), data))
            return payload, files
        return None, []

    async def _rest(self, request: web.Request) -> web.StreamResponse:
        loop = asyncio.get_running_loop()
        version = int(request.match_info["version"])
        raw_path = request.rel_url.raw_path
        path = "/" + raw_path.split("/", 3)[3] if raw_path.count("/") >= 3 else "/"
        body = await request.read()
        content_type = request.headers.get("Content-Type", "")
        rec = RecordedRequest(
            method=request.method,
            path=path,
            query=dict(request.query),
            headers=dict(request.headers),
            body=body,
            content_type=content_type,
            at=loop.time(),
            api_version=version,
        )
        delay = 0.0
        try:
            rec.json, rec.files = self._parse_body(content_type, body)
        except ValueError:
            status, out, headers = 400, {"message": "400: Bad Request", "code": 50109}, {}
        else:
            status, out, headers, delay = await self._answer(rec)
        rec.status = status
        rec.response = out if not isinstance(out, Scripted) else out.json
        self.request_log.append(rec)
        if delay:
            await asyncio.sleep(delay)
        if rec.dropped:  # a network failure: no answer, the connection is cut
            if request.transport is not None:
                request.transport.abort()
            return web.Response(status=status or 500)
        headers = {"Via": "1.1 google", **headers}
        if isinstance(out, Scripted):
            if out.text is not None:
                return web.Response(
                    status=status,
                    body=out.text.encode(),
                    headers={**headers, "Content-Type": out.content_type},
                )
            out = out.json
        if status == 204 or out is None:
            return web.Response(status=status, headers=headers)
        return web.Response(
            status=status,
            body=json.dumps(out, separators=(",", ":")).encode(),
            headers={**headers, "Content-Type": JSON_TYPE},
        )

    async def _answer(self, rec: RecordedRequest) -> tuple[int, Any, dict[str, str], float]:
        if rec.api_version not in (9, 10):
            return 400, {"message": "Invalid API version", "code": 50041}, {}, 0.0
        candidates = [r for r in self._routes if r.pattern.fullmatch(rec.path)]
        route = next((r for r in candidates if r.method == rec.method), None)
        if route is None:
            self.unhandled.append(rec)
            if candidates:
                return 405, {"message": "405: Method Not Allowed", "code": 0}, {}, 0.0
            return 404, {"message": "404: Not Found", "code": 0}, {}, 0.0
        match = route.pattern.fullmatch(rec.path)
        assert match is not None
        if route.auth and rec.header("Authorization") != f"Bot {self.token}":
            return 401, {"message": "401: Unauthorized", "code": 0}, {}, 0.0
        bucket_key, bucket_hash = self._bucket_key(route, match)
        delay = 0.0
        for method, pattern, queue in self._scripts:
            if queue and method == rec.method and pattern.fullmatch(rec.path):
                answer = queue.popleft()
                rec.scripted = True
                rec.dropped = answer.drop
                if not answer.handle:
                    return (
                        answer.status,
                        answer,
                        self._scripted_headers(answer, route, bucket_hash),
                        answer.delay,
                    )
                delay = answer.delay
                break
        rl_headers, limited = self._take_token(route, bucket_key, bucket_hash)
        if limited is not None:
            return 429, limited, rl_headers, delay
        try:
            status, out = await route.handler(rec, match)
        except Reply as reply:
            status, out = reply.status, reply.body
        except Exception:
            self.internal_errors.append(traceback.format_exc())
            status, out = 500, {"message": "500: Internal Server Error", "code": 0}
        return status, out, rl_headers, delay

    def _bucket_key(self, route: _Route, match: re.Match[str]) -> tuple[str, str]:
        groups = match.groupdict()
        if route.bucket == "default":
            name = f"{route.method} {route.pattern.pattern}"
        else:
            name = route.bucket
        major = "+".join(
            groups[k]
            for k in ("channel_id", "guild_id", "app_id", "token", "interaction_id")
            if groups.get(k)
        )
        bucket_hash = hashlib.sha1(name.encode()).hexdigest()[:32]
        return f"{bucket_hash}:{major}", bucket_hash

    def _take_token(
        self, route: _Route, key: str, bucket_hash: str
    ) -> tuple[dict[str, str], dict[str, Any] | None]:
        now = asyncio.get_running_loop().time()
        limit, window = self.bucket_limits.get(route.bucket, self.bucket_limits["default"])
        b = self._buckets.get(key)
        if b is None or now >= b.reset_at:
            b = _Bucket(limit, window, limit, now + window)
            self._buckets[key] = b
        reset_after = math.ceil((b.reset_at - now) * 1000) / 1000
        limited = None
        if b.remaining <= 0 and self.enforce_rate_limits:
            limited = {
                "message": "You are being rate limited.",
                "retry_after": reset_after,
                "global": False,
            }
        else:
            b.remaining -= 1
        headers = {
            "X-RateLimit-Limit": str(b.limit),
            "X-RateLimit-Remaining": str(max(b.remaining, 0)),
            "X-RateLimit-Reset": f"{time.time() + reset_after:.3f}",
            "X-RateLimit-Reset-After": f"{reset_after:.3f}",
            "X-RateLimit-Bucket": bucket_hash,
        }
        if limited is not None:
            headers["Retry-After"] = str(max(1, math.ceil(reset_after)))
            headers["X-RateLimit-Scope"] = "user"
        return headers, limited

    def _scripted_headers(
        self, answer: Scripted, route: _Route, bucket_hash: str
    ) -> dict[str, str]:
        headers = dict(answer.headers)
        if answer.status != 429 or answer.retry_after is None:
            return headers
        headers["X-RateLimit-Scope"] = answer.scope or "user"
        if answer.is_global:
            headers["X-RateLimit-Global"] = "true"
            return headers
        limit, _ = self.bucket_limits.get(route.bucket, self.bucket_limits["default"])
        headers.update(
            {
                "X-RateLimit-Limit": str(limit),
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": f"{time.time() + answer.retry_after:.3f}",
                "X-RateLimit-Reset-After": f"{answer.retry_after:.3f}",
                "X-RateLimit-Bucket": bucket_hash,
            }
        )
        return headers

    # -- REST: login ------------------------------------------------------------

    async def _get_gateway(self, rec: RecordedRequest, m: re.Match[str]) -> tuple[int, Any]:
        return 200, {"url": self.gateway_url}

    async def _get_gateway_bot(self, rec: RecordedRequest, m: re.Match[str]) -> tuple[int, Any]:
        return 200, {
            "url": self.gateway_url,
            "shards": self.shard_count,
            "session_start_limit": {
                "total": 1000,
                "remaining": 1000 - len(self.identify_log),
                "reset_after": 14_400_000,
                "max_concurrency": self.max_concurrency,
            },
        }

    async def _get_me(self, rec: RecordedRequest, m: re.Match[str]) -> tuple[int, Any]:
        return 200, self.bot_user_payload()

    async def _get_user(self, rec: RecordedRequest, m: re.Match[str]) -> tuple[int, Any]:
        user = self.users.get(int(m["user_id"]))
        if user is None:
            raise discord_error(404, 10013, "Unknown User")
        return 200, user.to_payload()

    async def _get_app(self, rec: RecordedRequest, m: re.Match[str]) -> tuple[int, Any]:
        return 200, {
            "id": str(self.application_id),
            "name": self.bot_user.username,
            "icon": None,
            "description": "",
            "summary": "",
            "type": None,
            "hook": True,
            "bot_public": True,
            "bot_require_code_grant": False,
            "verify_key": hashlib.sha256(self.token.encode()).hexdigest(),
            "owner": self.owner.to_payload(),
            "flags": self.application_flags,
            "team": None,
            "bot": self.bot_user.to_payload(),
            "tags": [],
            "redirect_uris": [],
            "interactions_endpoint_url": None,
            "role_connections_verification_url": None,
            "approximate_guild_count": len(self.guilds),
            "integration_types_config": {"0": {}},
        }

    async def _create_dm(self, rec: RecordedRequest, m: re.Match[str]) -> tuple[int, Any]:
        user = self.users.get(int((rec.json or {}).get("recipient_id", 0)))
        if user is None:
            raise discord_error(400, 50007, "Cannot send messages to this user")
        return 200, self._dm_channel(user).to_payload()

    async def _leave_guild(self, rec: RecordedRequest, m: re.Match[str]) -> tuple[int, Any]:
        gid = int(m["guild_id"])
        if gid not in self.guilds:
            raise discord_error(404, 10004, "Unknown Guild")
        shard = self.shard_of(gid)
        del self.guilds[gid]
        if shard in self.gateway.shard_sessions:
            await self.gateway.dispatch(shard, "GUILD_DELETE", {"id": str(gid)})
        return 204, None

    # -- REST: application commands ------------------------------------------------

    def _command_pool(
        self, rec: RecordedRequest, m: re.Match[str]
    ) -> tuple[list[dict[str, Any]], int | None]:
        if int(m["app_id"]) != self.application_id:
            raise discord_error(403, 50001, "Missing Access")
        gid = m.groupdict().get("guild_id")
        if gid is None:
            return self.global_commands, None
        if int(gid) not in self.guilds:
            raise discord_error(403, 50001, "Missing Access")
        return self.guild_commands.setdefault(int(gid), []), int(gid)

    def _make_command(
        self, body: dict[str, Any], guild_id: int | None, existing: dict[str, Any] | None
    ) -> dict[str, Any]:
        cmd: dict[str, Any] = {
            "id": existing["id"] if existing else str(self.ids.next()),
            "application_id": str(self.application_id),
            "version": existing["version"] if existing else str(self.ids.next()),
            "default_member_permissions": body.get("default_member_permissions"),
            "type": body.get("type", 1),
            "name": body["name"],
            "name_localizations": body.get("name_localizations"),
            "description": body.get("description", ""),
            "description_localizations": body.get("description_localizations"),
            "dm_permission": body.get("dm_permission", True),
            "contexts": body.get("contexts"),
            "integration_types": body.get("integration_types") or [0],
            "nsfw": bool(body.get("nsfw", False)),
        }
        if body.get("options"):
            cmd["options"] = copy.deepcopy(body["options"])
        if guild_id is not None:
            cmd["guild_id"] = str(guild_id)
        if existing is not None:
            same = {k: existing.get(k) for k in cmd if k not in ("version",)}
            if same != {k: cmd.get(k) for k in cmd if k not in ("version",)}:
                cmd["version"] = str(self.ids.next())
        return cmd

    async def _list_commands(self, rec: RecordedRequest, m: re.Match[str]) -> tuple[int, Any]:
        pool, _ = self._command_pool(rec, m)
        return 200, pool

    async def _put_commands(self, rec: RecordedRequest, m: re.Match[str]) -> tuple[int, Any]:
        pool, gid = self._command_pool(rec, m)
        body = rec.json
        if not isinstance(body, list):
            raise Reply(
                400,
                v.invalid_form_body(
                    {"_errors": [{"code": "BASE_TYPE_ARRAY", "message": "Must be an array."}]}
                ),
            )
        if err := v.commands_errors(body):
            raise Reply(400, err)
        old = {(c["type"], c["name"]): c for c in pool}
        new = [self._make_command(c, gid, old.get((c.get("type", 1), c["name"]))) for c in body]
        pool[:] = new
        return 200, new

    async def _post_command(self, rec: RecordedRequest, m: re.Match[str]) -> tuple[int, Any]:
        pool, gid = self._command_pool(rec, m)
        body = rec.json or {}
        if err := v.commands_errors([body]):
            raise Reply(400, err)
        key = (body.get("type", 1), body["name"])
        for i, c in enumerate(pool):
            if (c["type"], c["name"]) == key:
                pool[i] = self._make_command(body, gid, c)
                return 200, pool[i]
        cmd = self._make_command(body, gid, None)
        pool.append(cmd)
        return 201, cmd

    def _find_command_by_id(self, pool: list[dict[str, Any]], m: re.Match[str]) -> int:
        for i, c in enumerate(pool):
            if c["id"] == m["command_id"]:
                return i
        raise discord_error(404, 10063, "Unknown application command")

    async def _get_command(self, rec: RecordedRequest, m: re.Match[str]) -> tuple[int, Any]:
        pool, _ = self._command_pool(rec, m)
        return 200, pool[self._find_command_by_id(pool, m)]

    async def _patch_command(self, rec: RecordedRequest, m: re.Match[str]) -> tuple[int, Any]:
        pool, gid = self._command_pool(rec, m)
        i = self._find_command_by_id(pool, m)
        merged = {**pool[i], **(rec.json or {})}
        if err := v.commands_errors([merged]):
            raise Reply(400, err)
        pool[i] = self._make_command(merged, gid, pool[i])
        return 200, pool[i]

    async def _delete_command(self, rec: RecordedRequest, m: re.Match[str]) -> tuple[int, Any]:
        pool, _ = self._command_pool(rec, m)
        del pool[self._find_command_by_id(pool, m)]
        return 204, None

    # -- REST: channels and messages ---------------------------------------------

    def _require_channel(self, channel_id: int) -> FakeChannel:
        ch = self.channel(channel_id)
        if ch is None:
            raise discord_error(404, 10003, "Unknown Channel")
        return ch

    def _check_perms(self, channel: FakeChannel, needed: int) -> None:
        if channel.guild_id is None:
            return
        perms = self.bot_permissions(self.guilds[channel.guild_id], channel)
        if not perms & VIEW_CHANNEL:
            raise discord_error(403, 50001, "Missing Access")
        if perms & needed != needed:
            raise discord_error(403, 50013, "Missing Permissions")

    async def _get_channel(self, rec: RecordedRequest, m: re.Match[str]) -> tuple[int, Any]:
        ch = self._require_channel(int(m["channel_id"]))
        self._check_perms(ch, VIEW_CHANNEL)
        return 200, ch.to_payload()

    async def _typing(self, rec: RecordedRequest, m: re.Match[str]) -> tuple[int, Any]:
        ch = self._require_channel(int(m["channel_id"]))
        self._check_perms(ch, SEND_MESSAGES)
        return 204, None

    async def _no_content(self, rec: RecordedRequest, m: re.Match[str]) -> tuple[int, Any]:
        self._require_message(int(m["channel_id"]), int(m["message_id"]))
        return 204, None

    def _require_message(self, channel_id: int, message_id: int) -> dict[str, Any]:
        self._require_channel(channel_id)
        meta = self._meta.get(message_id)
        if meta is None or meta.deleted or meta.channel_id != channel_id:
            raise discord_error(404, 10008, "Unknown Message")
        return self.messages[message_id]

    async def _create_message(self, rec: RecordedRequest, m: re.Match[str]) -> tuple[int, Any]:
        channel = self._require_channel(int(m["channel_id"]))
        body = rec.json if isinstance(rec.json, dict) else {}
        needed = SEND_MESSAGES | (ATTACH_FILES if rec.files else 0)
        self._check_perms(channel, needed)
        if err := v.message_errors(body, n_files=len(rec.files)):
            raise Reply(400, err)
        nonce = body.get("nonce")
        nonce_key = None
        if nonce is not None and body.get("enforce_nonce"):
            nonce_key = (self.bot_user.id, str(nonce))
            prior = self._nonces.get(nonce_key)
            now = asyncio.get_running_loop().time()
            if prior is not None and now - self._meta[prior].created <= self.nonce_window:
                return 200, self.messages[prior]
        msg = self._build_message(channel, body, rec.files, author=self.bot_user)
        self._store(msg, channel, author_id=self.bot_user.id, nonce_key=nonce_key)
        await self._gateway_message_event("MESSAGE_CREATE", msg, channel)
        return 200, msg

    def _build_message(
        self,
        channel: FakeChannel,
        body: dict[str, Any],
        files: list[UploadedFile],
        *,
        author: FakeUser,
        mtype: int = 0,
        flags: int = 0,
        interaction: FakeInteraction | None = None,
    ) -> dict[str, Any]:
        mid = self.ids.next()
        content = body.get("content") or ""
        mentions, roles, everyone = self._mentions(
            channel, content, body.get("allowed_mentions"), author
        )
        msg: dict[str, Any] = {
            "type": mtype,
            "content": content,
            "mentions": mentions,
            "mention_roles": roles,
            "attachments": self._attachments(channel, body.get("attachments"), files),
            "embeds": [{"type": "rich", **e} for e in body.get("embeds") or []],
            "timestamp": iso(),
            "edited_timestamp": None,
            "flags": flags | (int(body.get("flags") or 0) & SETTABLE_FLAGS),
            "components": body.get("components") or [],
            "id": str(mid),
            "channel_id": str(channel.id),
            "author": author.to_payload(),
            "pinned": False,
            "mention_everyone": everyone,
            "tts": bool(body.get("tts", False)),
        }
        if body.get("nonce") is not None:
            msg["nonce"] = body["nonce"]
        ref = body.get("message_reference")
        if ref:
            ref_id = int(ref.get("message_id", 0))
            ref_meta = self._meta.get(ref_id)
            if ref_meta is None or ref_meta.deleted:
                if ref.get("fail_if_not_exists", True):
                    raise Reply(
                        400,
                        v.invalid_form_body(
                            {
                                "message_reference": v.leaf(
                                    "MESSAGE_REFERENCE_UNKNOWN_MESSAGE", "Unknown message"
                                )
                            }
                        ),
                    )
            else:
                msg["type"] = 19
                msg["message_reference"] = {
                    "type": 0,
                    "channel_id": str(ref_meta.channel_id),
                    "message_id": str(ref_id),
                    **({"guild_id": str(ref_meta.guild_id)} if ref_meta.guild_id else {}),
                }
                msg["referenced_message"] = self.messages[ref_id]
        if interaction is not None:
            msg["webhook_id"] = str(self.application_id)
            msg["application_id"] = str(self.application_id)
            meta = {
                "id": str(interaction.id),
                "type": interaction.type,
                "user": interaction.user.to_payload(),
                "authorizing_integration_owners": interaction.payload[
                    "authorizing_integration_owners"
                ],
            }
            if interaction.command_name:
                meta["name"] = interaction.command_name
                meta["command_type"] = 1
            if interaction.original_message_id is not None:
                meta["original_response_message_id"] = str(interaction.original_message_id)
            if interaction.message_id is not None:
                meta["interacted_message_id"] = str(interaction.message_id)
            msg["interaction_metadata"] = meta
        return msg

    def _attachments(
        self, channel: FakeChannel, declared: list[dict[str, Any]] | None, files: list[UploadedFile]
    ) -> list[dict[str, Any]]:
        by_field = {f.field: f for f in files}
        out = []
        used: set[str] = set()
        for att in declared or []:
            upload = by_field.get(f"files[{att.get('id')}]")
            if upload is None:
                continue  # an existing attachment kept on edit is handled by the caller
            used.add(upload.field)
            out.append(
                self._attachment(channel, upload, att.get("filename"), att.get("description"))
            )
        for upload in files:
            if upload.field not in used:
                out.append(self._attachment(channel, upload, None, None))
        return out

    def _attachment(
        self,
        channel: FakeChannel,
        upload: UploadedFile,
        filename: str | None,
        description: str | None,
    ) -> dict[str, Any]:
        aid = self.ids.next()
        name = filename or upload.filename
        ctype = mimetypes.guess_type(name)[0] or "application/octet-stream"
        if ctype.startswith("text/"):
            ctype += "; charset=utf-8"
        url = f"https://cdn.discordapp.com/attachments/{channel.id}/{aid}/{name}"
        data: dict[str, Any] = {
            "id": str(aid),
            "filename": name,
            "size": len(upload.data),
            "url": url,
            "proxy_url": url.replace("cdn.discordapp.com", "media.discordapp.net"),
            "content_type": ctype,
            "content_scan_version": 0,
        }
        if description:
            data["description"] = description
        return data

    def _mentions(
        self, channel: FakeChannel, content: str, allowed: dict[str, Any] | None, author: FakeUser
    ) -> tuple[list[dict[str, Any]], list[str], bool]:
        parse = (
            {"users", "roles", "everyone"} if allowed is None else set(allowed.get("parse") or [])
        )
        allowed_users = {int(u) for u in (allowed or {}).get("users") or []}
        allowed_roles = {int(r) for r in (allowed or {}).get("roles") or []}
        guild = self.guilds.get(channel.guild_id) if channel.guild_id else None
        users = []
        for uid in dict.fromkeys(int(x) for x in MENTION_USER_RE.findall(content)):
            if uid in self.users and ("users" in parse or uid in allowed_users):
                users.append(self.users[uid].to_payload())
        roles = []
        for rid in dict.fromkeys(int(x) for x in MENTION_ROLE_RE.findall(content)):
            if (
                guild
                and any(r.id == rid for r in guild.roles)
                and ("roles" in parse or rid in allowed_roles)
            ):
                roles.append(str(rid))
        everyone = False
        if ("@everyone" in content or "@here" in content) and "everyone" in parse and guild:
            member = guild.member(author.id)
            if member is not None:
                perms = compute_permissions(guild, member, channel)
                everyone = bool(perms & (MENTION_EVERYONE | ADMINISTRATOR))
        return users, roles, everyone

    def _store(
        self,
        msg: dict[str, Any],
        channel: FakeChannel,
        *,
        author_id: int,
        nonce_key: tuple[int, str] | None = None,
        ephemeral: bool = False,
        interaction_id: int | None = None,
    ) -> None:
        mid = int(msg["id"])
        self.messages[mid] = msg
        self._meta[mid] = _MessageMeta(
            channel_id=channel.id,
            guild_id=channel.guild_id,
            created=asyncio.get_running_loop().time(),
            author_id=author_id,
            nonce_key=nonce_key,
            ephemeral=ephemeral,
            interaction_id=interaction_id,
        )
        if nonce_key is not None:
            self._nonces[nonce_key] = mid
        if not ephemeral:
            channel.last_message_id = mid

    async def _gateway_message_event(
        self, event: str, msg: dict[str, Any], channel: FakeChannel
    ) -> None:
        """MESSAGE_CREATE/UPDATE to the shard that wants it (GUILD_MESSAGES / DIRECT_MESSAGES)."""
        mid = int(msg["id"])
        if self._meta[mid].ephemeral:
            return
        guild = self.guilds.get(channel.guild_id) if channel.guild_id else None
        shard = 0 if guild is None else self.shard_of(guild.id)
        intent = DIRECT_MESSAGES if guild is None else GUILD_MESSAGES
        if not self.gateway.wants(shard, intent):
            return
        data = copy.deepcopy(msg)
        author_id = int(msg["author"]["id"])
        session = self.gateway.shard_sessions[shard]
        mentioned = any(int(u["id"]) == self.bot_user.id for u in msg["mentions"])
        if (
            author_id != self.bot_user.id
            and not session.intents & MESSAGE_CONTENT
            and not mentioned
            and guild is not None
        ):
            data.update(content="", embeds=[], attachments=[], components=[])
        if guild is not None:
            data["guild_id"] = str(guild.id)
            member = guild.member(author_id)
            if member is not None:
                data["member"] = member.to_payload(with_user=False)
        await self.gateway.dispatch(shard, event, data)

    async def _list_messages(self, rec: RecordedRequest, m: re.Match[str]) -> tuple[int, Any]:
        channel = self._require_channel(int(m["channel_id"]))
        self._check_perms(channel, VIEW_CHANNEL)
        limit = max(1, min(100, int(rec.query.get("limit", 50))))
        msgs = self.channel_messages(channel.id, include_ephemeral=False)
        if "before" in rec.query:
            msgs = [x for x in msgs if int(x["id"]) < int(rec.query["before"])]
        if "after" in rec.query:
            msgs = [x for x in msgs if int(x["id"]) > int(rec.query["after"])]
            return 200, list(reversed(msgs[:limit]))
        return 200, list(reversed(msgs))[:limit]

    async def _get_message(self, rec: RecordedRequest, m: re.Match[str]) -> tuple[int, Any]:
        return 200, self._require_message(int(m["channel_id"]), int(m["message_id"]))

    def _apply_edit(
        self,
        msg: dict[str, Any],
        channel: FakeChannel,
        body: dict[str, Any],
        files: list[UploadedFile],
    ) -> None:
        if err := v.message_errors(body, n_files=len(files), require_content=False):
            raise Reply(400, err)
        edited = dict(msg)
        if "content" in body:
            edited["content"] = body["content"] or ""
            users, roles, everyone = self._mentions(
                channel, edited["content"], body.get("allowed_mentions"), self.bot_user
            )
            edited.update(mentions=users, mention_roles=roles, mention_everyone=everyone)
        if "embeds" in body:
            edited["embeds"] = [{"type": "rich", **e} for e in body["embeds"] or []]
        if "components" in body:
            edited["components"] = body["components"] or []
        if "flags" in body and body["flags"] is not None:
            keep = msg["flags"] & ~SETTABLE_FLAGS & ~LOADING
            edited["flags"] = (
                keep | (int(body["flags"]) & SETTABLE_FLAGS) | (msg["flags"] & EPHEMERAL)
            )
        else:
            edited["flags"] = msg["flags"] & ~LOADING
        if "attachments" in body or files:
            keep_ids = {str(a.get("id")) for a in body.get("attachments") or []}
            kept = [a for a in msg["attachments"] if a["id"] in keep_ids]
            edited["attachments"] = kept + self._attachments(
                channel, body.get("attachments"), files
            )
        if not (
            edited["content"] or edited["embeds"] or edited["attachments"] or edited["components"]
        ):
            raise discord_error(400, 50006, "Cannot send an empty message")
        if not msg["flags"] & LOADING:
            edited["edited_timestamp"] = iso()
        msg.clear()
        msg.update(edited)

    async def _edit_message(self, rec: RecordedRequest, m: re.Match[str]) -> tuple[int, Any]:
        channel = self._require_channel(int(m["channel_id"]))
        msg = self._require_message(channel.id, int(m["message_id"]))
        if int(msg["author"]["id"]) != self.bot_user.id:
            raise discord_error(403, 50005, "Cannot edit a message authored by another user")
        self._apply_edit(msg, channel, rec.json if isinstance(rec.json, dict) else {}, rec.files)
        await self._gateway_message_event("MESSAGE_UPDATE", msg, channel)
        return 200, msg

    async def _delete_message(self, rec: RecordedRequest, m: re.Match[str]) -> tuple[int, Any]:
        channel = self._require_channel(int(m["channel_id"]))
        msg = self._require_message(channel.id, int(m["message_id"]))
        if int(msg["author"]["id"]) != self.bot_user.id:
            self._check_perms(channel, MANAGE_MESSAGES)
        await self._delete(int(msg["id"]), channel)
        return 204, None

    async def _delete(self, mid: int, channel: FakeChannel) -> None:
        meta = self._meta[mid]
        meta.deleted = True
        if meta.ephemeral:
            return
        guild_id = channel.guild_id
        shard = 0 if guild_id is None else self.shard_of(guild_id)
        if self.gateway.wants(shard, DIRECT_MESSAGES if guild_id is None else GUILD_MESSAGES):
            data = {"id": str(mid), "channel_id": str(channel.id)}
            if guild_id is not None:
                data["guild_id"] = str(guild_id)
            await self.gateway.dispatch(shard, "MESSAGE_DELETE", data)

    # -- REST: guilds -------------------------------------------------------------

    def _require_guild(self, m: re.Match[str]) -> FakeGuild:
        guild = self.guilds.get(int(m["guild_id"]))
        if guild is None:
            raise discord_error(404, 10004, "Unknown Guild")
        return guild

    async def _get_guild(self, rec: RecordedRequest, m: re.Match[str]) -> tuple[int, Any]:
        return 200, self._require_guild(m).to_rest_payload()

    async def _get_guild_channels(self, rec: RecordedRequest, m: re.Match[str]) -> tuple[int, Any]:
        return 200, [c.to_payload() for c in self._require_guild(m).channels]

    async def _get_guild_roles(self, rec: RecordedRequest, m: re.Match[str]) -> tuple[int, Any]:
        return 200, [r.to_payload() for r in self._require_guild(m).roles]

    async def _get_member(self, rec: RecordedRequest, m: re.Match[str]) -> tuple[int, Any]:
        member = self._require_guild(m).member(int(m["user_id"]))
        if member is None:
            raise discord_error(404, 10007, "Unknown Member")
        return 200, member.to_payload()

    # -- REST: interactions and their webhooks ----------------------------------

    async def _interaction_callback(
        self, rec: RecordedRequest, m: re.Match[str]
    ) -> tuple[int, Any]:
        inter = self.interactions.get(int(m["interaction_id"]))
        if inter is None or inter.token != m["token"]:
            raise discord_error(404, 10062, "Unknown interaction")
        if inter.response_type is not None:
            raise discord_error(400, 40060, "Interaction has already been acknowledged.")
        if asyncio.get_running_loop().time() - inter.created_at > self.interaction_ack_timeout:
            raise discord_error(404, 10062, "Unknown interaction")
        body = rec.json if isinstance(rec.json, dict) else {}
        rtype = body.get("type")
        data = body.get("data") or {}
        if rtype not in CALLBACK_TYPES[inter.type]:
            raise Reply(
                400,
                v.invalid_form_body(
                    {
                        "type": v.leaf(
                            "INTERACTION_CALLBACK_TYPE_INVALID",
                            f"Value must be one of {sorted(CALLBACK_TYPES[inter.type])}.",
                        )
                    }
                ),
            )
        resource: dict[str, Any] = {"type": rtype}
        channel = self.channel(inter.channel_id) or self._dm_channel(inter.user)
        if rtype in (4, 5):
            if rtype == 4 and (err := v.message_errors(data, n_files=len(rec.files))):
                raise Reply(400, err)
            ephemeral = bool(int(data.get("flags") or 0) & EPHEMERAL)
            if rtype == 5:
                data = {"flags": int(data.get("flags") or 0) & EPHEMERAL}
            mtype = 20 if inter.type == APPLICATION_COMMAND else 0
            msg = self._build_message(
                channel,
                data,
                rec.files,
                author=self.bot_user,
                mtype=mtype,
                flags=LOADING if rtype == 5 else 0,
                interaction=inter,
            )
            self._store(
                msg,
                channel,
                author_id=self.bot_user.id,
                ephemeral=ephemeral,
                interaction_id=inter.id,
            )
            inter.original_message_id = int(msg["id"])
            resource["message"] = msg
            await self._gateway_message_event("MESSAGE_CREATE", msg, channel)
        elif rtype == 7:
            assert inter.message_id is not None
            msg = self.messages[inter.message_id]
            self._apply_edit(msg, channel, data, rec.files)
            resource["message"] = msg
            await self._gateway_message_event("MESSAGE_UPDATE", msg, channel)
        elif rtype == 8:
            if err := v.autocomplete_errors(data):
                raise Reply(400, err)
        elif rtype == 9:
            missing = [k for k in ("custom_id", "title", "components") if not data.get(k)]
            if missing:
                raise Reply(
                    400,
                    v.invalid_form_body(
                        {
                            "data": {
                                k: v.leaf("BASE_TYPE_REQUIRED", "This field is required")
                                for k in missing
                            }
                        }
                    ),
                )
        inter.response_type = rtype
        inter.callback = rec
        inter.responded.set()
        if rec.query.get("with_response", "").lower() not in ("1", "true"):
            return 204, None
        summary: dict[str, Any] = {"id": str(inter.id), "type": inter.type}
        if "message" in resource:
            msg = resource["message"]
            summary.update(
                response_message_id=msg["id"],
                response_message_loading=bool(msg["flags"] & LOADING),
                response_message_ephemeral=bool(msg["flags"] & EPHEMERAL),
            )
        return 200, {"interaction": summary, "resource": resource}

    def _hook_interaction(self, m: re.Match[str]) -> FakeInteraction:
        if int(m["app_id"]) != self.application_id:
            raise discord_error(404, 10015, "Unknown Webhook")
        inter = next((i for i in self.interactions.values() if i.token == m["token"]), None)
        if inter is None or inter.response_type is None:
            raise discord_error(404, 10015, "Unknown Webhook")
        if asyncio.get_running_loop().time() - inter.created_at > self.interaction_token_ttl:
            raise discord_error(401, 50027, "Invalid Webhook Token")
        return inter

    def _hook_message(self, inter: FakeInteraction, m: re.Match[str]) -> dict[str, Any]:
        ref = m["message_id"]
        mid = inter.original_message_id if ref == "@original" else int(ref)
        if ref != "@original" and mid not in [inter.original_message_id, *inter.followup_ids]:
            mid = None
        if mid is None or self._meta[mid].deleted:
            raise discord_error(404, 10008, "Unknown Message")
        return self.messages[mid]

    async def _execute_webhook(self, rec: RecordedRequest, m: re.Match[str]) -> tuple[int, Any]:
        """Create Followup Message: like Execute Webhook but ``wait`` is always true; right
        after a deferred (type 5) response it edits the loading message instead."""
        inter = self._hook_interaction(m)
        body = rec.json if isinstance(rec.json, dict) else {}
        channel = self.channel(inter.channel_id) or self._dm_channel(inter.user)
        original = self.messages.get(inter.original_message_id or 0)
        if original is not None and original["flags"] & LOADING:
            body = {k: val for k, val in body.items() if k != "flags"}
            if err := v.message_errors(body, n_files=len(rec.files)):
                raise Reply(400, err)
            self._apply_edit(original, channel, body, rec.files)
            await self._gateway_message_event("MESSAGE_UPDATE", original, channel)
            return 200, original
        if err := v.message_errors(body, n_files=len(rec.files)):
            raise Reply(400, err)
        ephemeral = bool(int(body.get("flags") or 0) & EPHEMERAL)
        mtype = 20 if inter.type == APPLICATION_COMMAND else 0
        msg = self._build_message(
            channel, body, rec.files, author=self.bot_user, mtype=mtype, interaction=inter
        )
        self._store(
            msg, channel, author_id=self.bot_user.id, ephemeral=ephemeral, interaction_id=inter.id
        )
        inter.followup_ids.append(int(msg["id"]))
        await self._gateway_message_event("MESSAGE_CREATE", msg, channel)
        return 200, msg

    async def _get_hook_msg(self, rec: RecordedRequest, m: re.Match[str]) -> tuple[int, Any]:
        return 200, self._hook_message(self._hook_interaction(m), m)

    async def _edit_hook_msg(self, rec: RecordedRequest, m: re.Match[str]) -> tuple[int, Any]:
        inter = self._hook_interaction(m)
        msg = self._hook_message(inter, m)
        channel = self.channel(inter.channel_id) or self._dm_channel(inter.user)
        self._apply_edit(msg, channel, rec.json if isinstance(rec.json, dict) else {}, rec.files)
        await self._gateway_message_event("MESSAGE_UPDATE", msg, channel)
        return 200, msg

    async def _del_hook_msg(self, rec: RecordedRequest, m: re.Match[str]) -> tuple[int, Any]:
        inter = self._hook_interaction(m)
        msg = self._hook_message(inter, m)
        channel = self.channel(inter.channel_id) or self._dm_channel(inter.user)
        await self._delete(int(msg["id"]), channel)
        return 204, None
