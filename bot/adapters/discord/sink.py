"""The Discord delivery sink: scheduled digests and instant alerts, posted exactly once.

The :class:`~bot.core.delivery.Outbox` records a delivery ``pending``, calls the sink, and
marks it ``sent`` only when the sink returns the message ids Discord answered with.

- Rate limits (429) are waited out by discord.py itself (it honours ``Retry-After`` and
  the bucket headers); 500/502/504 are retried by discord.py a few times too.
- What remains (another 5xx, a dropped connection, a timeout) is a *transient*
  :class:`~bot.errors.DeliveryError`: the Outbox retries later with backoff.
- 403 (the bot lost access or a permission) and 404 (the channel is gone) are
  *permanent*: the Outbox pauses the channel's posts and ``/status`` says why; Briefbot
  also tells the channel's admins on their next command in that server
  (:mod:`bot.adapters.discord.interactions`). Nothing is retried until someone with
  Manage Server runs ``/digest schedule`` again.

Duplicates: every message carries a nonce with ``enforce_nonce`` (discord.py sets it
when a nonce is given), so a retry of a message Discord did receive returns that message
instead of posting it twice. A digest split over several messages uses one stable nonce
per part, derived from the delivery's nonce (:func:`part_nonce`, at most 25 characters),
and the Outbox records the parts already confirmed (``send_parts``' ``on_part``), so a
retry, even after a restart, posts only the parts still missing.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable, Sequence

import aiohttp
import discord

from bot.adapters.discord.embeds import NO_MENTIONS, Outgoing, digest_messages
from bot.core.digest import Digest
from bot.core.ports import ChannelRecord
from bot.errors import DeliveryError

log = logging.getLogger(__name__)

PLATFORM = "discord"
NONCE_MAX = 25
#: one message may take this long (discord.py's own 429/5xx retries included)
SEND_TIMEOUT = 90.0

PartDone = Callable[[list[str]], Awaitable[None]]


def part_nonce(nonce: str, index: int, count: int) -> str:
    """The nonce of part ``index`` (0-based) of a ``count``-part delivery: the delivery's
    own nonce for a single message, else a stable hash of (nonce, index): distinct per
    part, the same on every retry, at most 25 characters."""
    if count == 1 and len(nonce) <= NONCE_MAX:
        return nonce
    digest = hashlib.blake2b(f"{nonce}:{index}".encode(), digest_size=12).hexdigest()
    return digest[:NONCE_MAX]


def refusal_text(err: discord.HTTPException) -> str:
    """Why Discord refused, as a sentence for /status and the admin notice."""
    what = err.text or err.response.reason or "refused"
    code = f", code {err.code}" if err.code else ""
    if err.status == 403:
        hint = "the bot needs View Channel, Send Messages and Embed Links in this channel"
    elif err.status == 404:
        hint = "the channel no longer exists or the bot was removed from the server"
    else:
        hint = "Discord refused the message"
    return f"{what} (Discord {err.status}{code}): {hint}"


class DiscordSink:
    """Posts digests to Discord channels for the Outbox (the ``Sink`` protocol)."""

    platform = PLATFORM

    def __init__(self, client: discord.Client, *, send_timeout: float = SEND_TIMEOUT) -> None:
        self.client = client
        self.send_timeout = send_timeout

    async def send(self, channel: ChannelRecord, digest: Digest, *, nonce: str) -> list[str]:
        return await self.send_parts(channel, digest, nonce=nonce)

    async def send_parts(
        self,
        channel: ChannelRecord,
        digest: Digest,
        *,
        nonce: str,
        done: Sequence[str] = (),
        on_part: PartDone | None = None,
    ) -> list[str]:
        """Post the parts of ``digest`` not in ``done`` (the ids of the parts already
        confirmed, in order); after each confirmed part ``on_part`` gets the ids so far.
        Returns every part's message id."""
        if self.client.is_closed() or self.client.user is None:
            raise DeliveryError("not connected to Discord", permanent=False)
        target = self._target(channel)
        messages = digest_messages(digest)
        ids = [str(i) for i in done][: len(messages)]
        for index, message in enumerate(messages):
            if index < len(ids):
                continue  # confirmed by an earlier attempt
            sent = await self._send_one(
                channel, target, message, part_nonce(nonce, index, len(messages))
            )
            ids.append(str(sent.id))
            if on_part is not None and index + 1 < len(messages):
                await on_part(list(ids))
        return ids

    def _target(self, channel: ChannelRecord) -> discord.abc.Messageable:
        try:
            channel_id = int(channel.external_id)
        except ValueError:
            raise DeliveryError(
                f"{channel.external_id!r} is not a Discord channel id", permanent=True
            ) from None
        cached = self.client.get_channel(channel_id)
        if isinstance(cached, discord.abc.Messageable):
            return cached
        gid = channel.guild_id
        guild_id = int(gid) if gid and gid.isdigit() else None
        return self.client.get_partial_messageable(channel_id, guild_id=guild_id)

    async def _send_one(
        self,
        channel: ChannelRecord,
        target: discord.abc.Messageable,
        message: Outgoing,
        nonce: str,
    ) -> discord.Message:
        try:
            return await asyncio.wait_for(
                target.send(
                    content=message.content,
                    embeds=message.embeds,
                    nonce=nonce,
                    allowed_mentions=NO_MENTIONS,
                ),
                self.send_timeout,
            )
        except (discord.Forbidden, discord.NotFound) as err:
            raise DeliveryError(refusal_text(err), permanent=True) from err
        except discord.HTTPException as err:
            # 5xx after discord.py's own retries, or a 4xx about the payload (our bug:
            # logged loudly, retried a bounded number of times, never pausing the channel)
            level = logging.WARNING if err.status >= 500 else logging.ERROR
            log.log(
                level,
                "Discord answered %s to a message for channel %s: %s",
                err.status,
                channel.external_id,
                err.text,
            )
            raise DeliveryError(
                f"Discord answered {err.status} {err.text or ''}".strip(), permanent=False
            ) from err
        except (aiohttp.ClientError, OSError) as err:
            raise DeliveryError(f"connection to Discord failed: {err}", permanent=False) from err
        except TimeoutError as err:
            raise DeliveryError(
                f"Discord did not answer within {self.send_timeout:g} s", permanent=False
            ) from err
