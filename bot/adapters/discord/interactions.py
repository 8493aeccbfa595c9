"""Running a slash command: interaction -> core -> Discord reply, inside the 3-second window.

:class:`CommandRunner` turns an interaction into a
:class:`~bot.core.replies.ChannelContext` (platform ``discord``, the channel and guild
ids, ``can_manage`` from the member's permissions in the channel: Manage Server or
Administrator), calls :meth:`BriefingService.dispatch` and sends the
:class:`~bot.core.replies.Reply` back through a :class:`Responder`.

Discord wants every interaction acknowledged within 3 seconds. Commands that fetch
(``/feeds add``, ``/feeds import``) defer at once; every other command answers directly
if the core is done within :data:`DEFER_AFTER` seconds, else it defers then and follows
up. (Commands never wait on a poll: they answer from what is stored.)

Errors and configuration replies are ephemeral, briefings visible. The Responder keeps
that true after a defer too: a visible defer whose answer turns out private is removed
and the answer sent privately; a private defer whose answer is a briefing keeps a short
private note and posts the briefing visibly.

Admin notice: when Discord refused a delivery for good (the bot lost access to a
channel), the channel's posts are paused and ``/status`` there says why. Because nobody
may be reading that channel, the next command run in the same server by a member with
Manage Server also gets a private notice naming the channel and what to do (once per
member and pause; it is logged too).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aiohttp
import discord
from discord import app_commands

from bot.adapters.discord.embeds import (
    NO_MENTIONS,
    Outgoing,
    reply_messages,
    safe_text,
    text_chunks,
)
from bot.core.commands import Autocomplete, CommandSpec, OptionType
from bot.core.opml import MAX_OPML_BYTES
from bot.core.ports import Storage
from bot.core.replies import ChannelContext, Reply
from bot.core.service import BriefingService
from bot.errors import InputError

log = logging.getLogger(__name__)

PLATFORM = "discord"
#: answer directly if the core is done this fast, else defer (Discord allows 3 s)
DEFER_AFTER = 1.5
#: commands that fetch from the network: always deferred
SLOW_COMMANDS = frozenset({"feeds add", "feeds import"})
MAX_ATTACHMENT_BYTES = MAX_OPML_BYTES
AUTOCOMPLETE_MAX = 25
CHOICE_MAX = 100

_DEFERRED = "briefbot.deferred"  # None | "ephemeral" | "visible"
_ANSWERED = "briefbot.answered"  # a first message was sent after the defer


def can_manage(interaction: discord.Interaction[Any]) -> bool:
    """The member may change the channel's configuration (Manage Server or Admin)."""
    if interaction.guild_id is None:
        return False
    perms = interaction.permissions
    return bool(perms.manage_guild or perms.administrator)


def context_of(interaction: discord.Interaction[Any]) -> ChannelContext:
    if interaction.guild_id is None or interaction.channel_id is None:
        raise InputError(
            "Briefbot's commands work in a server's text channel, not in direct messages."
        )
    channel = interaction.channel
    return ChannelContext(
        platform=PLATFORM,
        channel_id=str(interaction.channel_id),
        guild_id=str(interaction.guild_id),
        channel_name=getattr(channel, "name", None),
        user=f"{interaction.user} ({interaction.user.id})",
        can_manage=can_manage(interaction),
    )


class Responder:
    """Sends the answer(s) to one interaction: the first as the interaction response (or
    after a defer, the first follow-up), the rest as follow-ups, always with
    ``allowed_mentions`` none."""

    def __init__(self, interaction: discord.Interaction[Any]) -> None:
        self.interaction = interaction

    @property
    def deferred(self) -> str | None:
        value = self.interaction.extras.get(_DEFERRED)
        return str(value) if value else None

    async def defer(self, *, ephemeral: bool) -> None:
        if self.interaction.response.is_done():
            return
        await self.interaction.response.defer(ephemeral=ephemeral, thinking=True)
        self.interaction.extras[_DEFERRED] = "ephemeral" if ephemeral else "visible"

    async def send(self, messages: list[Outgoing], *, ephemeral: bool) -> None:
        inter = self.interaction
        for i, msg in enumerate(messages):
            first = i == 0
            if first and not inter.response.is_done():
                await inter.response.send_message(
                    **_kwargs(msg), ephemeral=ephemeral, allowed_mentions=NO_MENTIONS
                )
                continue
            if first and self.deferred and not inter.extras.get(_ANSWERED):
                await self._after_defer(ephemeral)
            await inter.followup.send(
                **_kwargs(msg), ephemeral=ephemeral, allowed_mentions=NO_MENTIONS
            )
            inter.extras[_ANSWERED] = True

    async def _after_defer(self, ephemeral: bool) -> None:
        """The first follow-up after a defer replaces the "thinking…" message and keeps
        its visibility; when that is the wrong one, fix it first."""
        inter = self.interaction
        was = self.deferred
        if was == "visible" and ephemeral:
            # a private answer to a visible "thinking…": take the placeholder away
            # (edited first, so it is no longer the loading message), answer privately
            await inter.edit_original_response(content="…")
            await inter.delete_original_response()
        elif was == "ephemeral" and not ephemeral:
            # a briefing after a private "thinking…": a private note, then post it
            await inter.edit_original_response(content="Posted below.")
        inter.extras[_ANSWERED] = True

    async def reply(self, reply: Reply) -> None:
        await self.send(reply_messages(reply), ephemeral=reply.ephemeral or reply.error)

    async def error(self, text: str) -> None:
        """A short private message (the error handler's), whatever state we are in."""
        chunks = text_chunks([text]) or ["⚠️"]
        await self.send([Outgoing(content=c) for c in chunks], ephemeral=True)


def _kwargs(msg: Outgoing) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if msg.content:
        out["content"] = msg.content
    if msg.embeds:
        out["embeds"] = msg.embeds
    file = msg.file()
    if file is not None:
        out["file"] = file
    return out


class PausedNotices:
    """Tells a server's admins (on their next command there) that Briefbot cannot post in
    one of its channels any more."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self._told: set[tuple[int, int, str]] = set()

    async def lines_for(self, guild_id: str, user_id: int) -> list[str]:
        lines = []
        for channel in await self.storage.all_channels(PLATFORM):
            reason = channel.paused_reason
            if channel.guild_id != guild_id or not reason:
                continue
            key = (channel.id, user_id, reason)
            if key in self._told:
                continue
            self._told.add(key)
            where = f"<#{channel.external_id}>" if channel.external_id.isdigit() else "a channel"
            lines.append(
                f"⚠️ Briefbot cannot post in {where}, so its digests and alerts there are "
                f"paused: {safe_text(reason)}. Fix the bot's permissions in that channel, "
                "then run /digest schedule there to resume."
            )
        return lines


class CommandRunner:
    """What every generated slash command calls (see :mod:`.commands`)."""

    def __init__(self, service: BriefingService, storage: Storage) -> None:
        self.service = service
        self.notices = PausedNotices(storage)
        self.defer_after = DEFER_AFTER

    async def run(
        self, interaction: discord.Interaction[Any], spec: CommandSpec, args: dict[str, Any]
    ) -> None:
        ctx = context_of(interaction)
        responder = Responder(interaction)
        attachments = [o for o in spec.options if o.type is OptionType.ATTACHMENT]
        if spec.name in SLOW_COMMANDS or attachments:
            await responder.defer(ephemeral=not spec.visible)
        for opt in attachments:
            value = args.get(opt.name)
            if isinstance(value, discord.Attachment):
                args[opt.name] = await read_attachment(value, opt.name)
        work = asyncio.ensure_future(self.service.dispatch(ctx, spec.name, args))
        try:
            if not responder.deferred:
                done, _ = await asyncio.wait({work}, timeout=self.defer_after)
                if not done:
                    await responder.defer(ephemeral=not spec.visible)
            reply = await work
        finally:
            if not work.done():
                work.cancel()
        await responder.reply(reply)
        if ctx.can_manage and ctx.guild_id is not None:
            notices = await self.notices.lines_for(ctx.guild_id, interaction.user.id)
            if notices:
                await interaction.followup.send(
                    "\n".join(notices), ephemeral=True, allowed_mentions=NO_MENTIONS
                )

    async def autocomplete(
        self, interaction: discord.Interaction[Any], what: Autocomplete, current: str
    ) -> list[app_commands.Choice[str]]:
        """At most 25 suggestions matching what was typed (never raises: an autocomplete
        has no error message; a failure suggests nothing and is logged)."""
        try:
            ctx = context_of(interaction)
            found = await self.service.autocomplete(
                ctx, what, current or "", limit=AUTOCOMPLETE_MAX
            )
            if what is Autocomplete.FEED and any(len(v) > CHOICE_MAX for _, v in found):
                # Discord caps a choice's value at 100 characters: a long feed URL is
                # given by its number in /feeds list instead (the core accepts both)
                every = await self.service.autocomplete(ctx, what, "", limit=10_000)
                number = {value: str(i) for i, (_, value) in enumerate(every, 1)}
                found = [
                    (label, v if len(v) <= CHOICE_MAX else number.get(v, v[:CHOICE_MAX]))
                    for label, v in found
                ]
            return [
                app_commands.Choice(name=_choice_name(label), value=value[:CHOICE_MAX])
                for label, value in found[:AUTOCOMPLETE_MAX]
            ]
        except Exception:
            log.exception("autocomplete %s failed", what)
            return []


def _choice_name(label: str) -> str:
    label = " ".join(label.split()) or "?"
    return label if len(label) <= CHOICE_MAX else label[: CHOICE_MAX - 1] + "…"


async def read_attachment(attachment: discord.Attachment, name: str) -> bytes:
    """An attachment's bytes, refusing (InputError) files over the cap before download."""
    cap = MAX_ATTACHMENT_BYTES
    if attachment.size > cap:
        raise InputError(
            f"{name}: {attachment.filename} is {attachment.size // 1000} kB; "
            f"the limit is {cap // 1000} kB."
        )
    try:
        data = await attachment.read()
    except (discord.HTTPException, aiohttp.ClientError, OSError) as err:
        why = f"HTTP {err.status}" if isinstance(err, discord.HTTPException) else type(err).__name__
        raise InputError(
            f"{name}: {attachment.filename} could not be read from Discord "
            f"({why}); please upload it again."
        ) from None
    if len(data) > cap:
        raise InputError(f"{name}: {attachment.filename} is over {cap // 1000} kB.")
    return data
