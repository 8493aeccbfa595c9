"""Answering Slack after the acknowledgement, and who may change a channel's setup.

- :func:`answer`: a reply through the slash command's ``response_url`` (a briefing in the
  channel, anything else ephemeral), at most :data:`RESPONSE_URL_USES` messages there and
  the rest through ``chat.postMessage`` / ``chat.postEphemeral``; a file is uploaded to
  the channel (``files.uploadV2``);
- :class:`Permissions`: workspace admins and owners (``users.info``, cached briefly) and
  the users in ``[slack] managers``; :func:`require_manager` refuses anyone else;
- :func:`context_of`: the caller of a command, a menu or a modal.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from bot.adapters.slack.blocks import (
    COMMAND,
    FALLBACK_MAX,
    SlackMessage,
    escape,
    reply_messages,
    section,
    slack_commands,
)
from bot.adapters.slack.errors import MANAGE_DENIED, NOT_A_CHANNEL, user_message
from bot.core.replies import ChannelContext, Reply
from bot.errors import BriefbotError, InputError

log = logging.getLogger(__name__)

PLATFORM = "slack"
#: Slack accepts up to 5 messages through one response_url
RESPONSE_URL_USES = 5
#: users.info must answer within this (the permission is checked before acknowledging)
USERS_INFO_TIMEOUT = 2.0


class Refused(BriefbotError):
    """The user may not change this channel's setup."""


def context_of(body: Mapping[str, Any], *, can_manage: bool = False) -> ChannelContext:
    """The caller of a slash command, a block action or a modal (whose private_metadata
    carries the channel)."""
    channel = body.get("channel_id") or (body.get("channel") or {}).get("id")
    team = body.get("team_id") or (body.get("team") or {}).get("id")
    user_id = body.get("user_id") or (body.get("user") or {}).get("id")
    name = body.get("user_name") or (body.get("user") or {}).get("username") or "?"
    channel_name = body.get("channel_name") or (body.get("channel") or {}).get("name")
    if not channel or str(channel).startswith("D") or channel_name == "directmessage":
        raise InputError(NOT_A_CHANNEL)
    return ChannelContext(
        platform=PLATFORM,
        channel_id=str(channel),
        guild_id=str(team) if team else None,
        channel_name=channel_name,
        user=f"{name} ({user_id})",
        can_manage=can_manage,
    )


class Permissions:
    """Who may change a channel's setup: workspace admins and owners (``users.info``,
    cached for ``ttl`` seconds) and the users in ``[slack] managers``."""

    def __init__(
        self,
        managers: Sequence[str] = (),
        ttl: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
        timeout: float = USERS_INFO_TIMEOUT,
    ) -> None:
        self.managers = {m.strip() for m in managers if m.strip()}
        self.ttl = ttl
        self.timeout = timeout
        self.clock = clock
        self._cache: dict[tuple[str, str], tuple[float, bool]] = {}

    async def can_manage(self, client: AsyncWebClient, team_id: str | None, user_id: str) -> bool:
        if user_id in self.managers:
            return True
        key = (team_id or "", user_id)
        now = self.clock()
        cached = self._cache.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        try:  # within Slack's 3 seconds: a slow answer (a 429 wait) counts as no
            resp = await asyncio.wait_for(client.users_info(user=user_id), self.timeout)
        except (SlackApiError, aiohttp.ClientError, OSError, TimeoutError) as err:
            log.warning("users.info %s failed: %s; treating them as a member", user_id, err)
            return False
        user = resp.get("user") or {}
        allowed = bool(user.get("is_admin") or user.get("is_owner") or user.get("is_primary_owner"))
        self._cache[key] = (now + self.ttl, allowed)
        return allowed


async def require_manager(
    permissions: Permissions,
    client: AsyncWebClient,
    body: Mapping[str, Any],
    ctx: ChannelContext,
) -> ChannelContext:
    """``ctx`` with ``can_manage``, or :class:`Refused` (the user may not change the
    channel's setup)."""
    user_id = body.get("user_id") or (body.get("user") or {}).get("id") or ""
    if not await permissions.can_manage(client, ctx.guild_id, str(user_id)):
        log.info("%s refused to %s in %s:%s", COMMAND, ctx.user, ctx.guild_id, ctx.channel_id)
        raise Refused(MANAGE_DENIED)
    return ChannelContext(
        platform=ctx.platform,
        channel_id=ctx.channel_id,
        guild_id=ctx.guild_id,
        channel_name=ctx.channel_name,
        user=ctx.user,
        can_manage=True,
    )


async def post_response(url: str, message: SlackMessage, **extra: Any) -> None:
    """Send one message to a ``response_url`` (no link_names, no unfurls)."""
    payload = {"text": message.text, "blocks": message.blocks, **extra}
    payload.setdefault("unfurl_links", False)
    payload.setdefault("unfurl_media", False)
    resp = await AsyncWebhookClient(url).send_dict(payload)
    if resp.status_code >= 400:
        log.warning("response_url answered %s: %s", resp.status_code, resp.body)


def ephemeral(text: str) -> SlackMessage:
    """A short private answer (commands named as ``/briefbot …``)."""
    text = escape(slack_commands(text))
    return SlackMessage(text=text[:FALLBACK_MAX], blocks=[section(text)])


async def answer(
    url: str,
    client: AsyncWebClient,
    ctx: ChannelContext,
    reply: Reply,
    *,
    visible: bool,
    replace: bool = False,
) -> None:
    """Send a reply after the acknowledgement: through the response_url (a briefing
    in the channel, anything else ephemeral), its file uploaded to the channel."""
    kind = "in_channel" if visible else "ephemeral"
    for i, message in enumerate(reply_messages(reply)):
        extra: dict[str, Any] = {"response_type": kind}
        extra["replace_original"] = bool(replace and i == 0 and not visible)
        if url and i < RESPONSE_URL_USES - 1:  # one use kept (a menu's clean-up)
            await post_response(url, message, **extra)
        elif visible:
            await post_visible(client, ctx, message)
        else:
            await post_ephemeral(client, ctx, message)
    if reply.attachment is not None:
        att = reply.attachment
        try:
            await client.files_upload_v2(
                channel=ctx.channel_id,
                content=att.data.decode("utf-8", "replace"),
                filename=att.filename,
                title=att.filename,
            )
        except SlackApiError as err:
            log.warning("uploading %s to %s failed: %s", att.filename, ctx.channel_id, err)
            note = ephemeral(f"⚠️ The file could not be uploaded: {user_message(err)}")
            if url:
                await post_response(url, note, response_type="ephemeral")


async def post_visible(client: AsyncWebClient, ctx: ChannelContext, message: SlackMessage) -> None:
    try:
        await client.chat_postMessage(
            channel=ctx.channel_id,
            text=message.text,
            blocks=message.blocks,
            unfurl_links=False,
            unfurl_media=False,
        )
    except SlackApiError as err:
        log.warning("could not post a briefing in %s: %s", ctx.channel_id, err)


async def post_ephemeral(
    client: AsyncWebClient, ctx: ChannelContext, message: SlackMessage
) -> None:
    user = (ctx.user or "").rpartition("(")[2].rstrip(")")
    try:
        await client.chat_postEphemeral(
            channel=ctx.channel_id, user=user, text=message.text, blocks=message.blocks
        )
    except SlackApiError as err:
        log.warning("could not answer %s in %s: %s", ctx.user, ctx.channel_id, err)
