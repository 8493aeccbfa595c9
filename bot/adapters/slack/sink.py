"""The Slack delivery sink: scheduled digests and instant alerts, posted exactly once.

The :class:`~bot.core.delivery.Outbox` records a delivery ``pending``, calls the sink, and
marks it ``sent`` only when the sink returns the message timestamps Slack answered with.

Slack has no idempotency key, so every message carries *message metadata*
(``event_type`` ``briefbot_delivery``, ``event_payload.key``: the delivery's nonce and
the part's number). After an ambiguous failure (a timeout, a dropped connection or a
5xx after the request was sent: Slack may have posted it) the nonce is *suspect*, and
before the next attempt the sink reads the channel's recent history
(``conversations.history`` with ``include_all_metadata``) and takes the parts already
there instead of posting them again. Deliveries still pending when the adapter starts
(a restart: the last process may have died right after Slack accepted one) are suspect
too, and so is a delivery with parts confirmed already.

- 429: the client's :class:`AsyncRateLimitErrorRetryHandler` waits out ``Retry-After``
  and retries (a 429 means nothing was posted). The client has *no* connection-error
  retry handler: resending blindly after a dropped connection is what would duplicate.
- ``channel_not_found``, ``not_in_channel``, ``is_archived``, ``invalid_auth``,
  ``account_inactive``... (:data:`.errors.PAUSING`): permanent, the Outbox pauses the
  channel and ``/briefbot status`` says why.
- Anything else is transient: the Outbox retries later with backoff.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from bot.adapters.slack.blocks import SlackMessage, digest_messages
from bot.adapters.slack.errors import error_code, pause_reason, pauses, status_of
from bot.core.digest import Digest
from bot.core.ports import ChannelRecord
from bot.errors import DeliveryError

log = logging.getLogger(__name__)

PLATFORM = "slack"
EVENT_TYPE = "briefbot_delivery"
#: one message may take this long (slack_sdk's own 429 waits included)
SEND_TIMEOUT = 90.0
#: how many recent messages are searched for a delivery's key
HISTORY_LIMIT = 200
#: 429 retries slack_sdk makes (each waiting Retry-After) before the Outbox takes over
RATE_LIMIT_RETRIES = 3

PartDone = Callable[[list[str]], Awaitable[None]]
#: team id (the channel's guild_id) -> a client with that workspace's bot token
ClientFor = Callable[[str | None], Awaitable[AsyncWebClient]]


def part_key(nonce: str, index: int, count: int) -> str:
    """The key of part ``index`` of a ``count``-part delivery (stable across retries)."""
    return nonce if count == 1 else f"{nonce}:{index + 1}/{count}"


def posting_client(token: str, base_url: str, *, timeout: int = 30) -> AsyncWebClient:
    """A client for posting: waits out 429s, never retries a dropped connection."""
    return AsyncWebClient(
        token=token,
        base_url=base_url,
        timeout=timeout,
        retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=RATE_LIMIT_RETRIES)],
    )


class SlackSink:
    """Posts digests to Slack channels for the Outbox (the ``PartialSink`` protocol)."""

    platform = PLATFORM

    def __init__(self, client_for: ClientFor, *, send_timeout: float = SEND_TIMEOUT) -> None:
        self.client_for = client_for
        self.send_timeout = send_timeout
        #: nonces whose earlier attempt may have been posted: check history first
        self.suspect: set[str] = set()

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
        """Post the parts of ``digest`` not in ``done`` nor already in the channel;
        returns every part's message ``ts``."""
        client = await self._client(channel)
        messages = digest_messages(digest)
        ids = [str(i) for i in done][: len(messages)]
        posted: dict[str, str] | None = None
        if nonce in self.suspect or ids:
            posted = await self._posted_keys(client, channel)
        for index, message in enumerate(messages):
            if index < len(ids):
                continue  # confirmed by an earlier attempt
            key = part_key(nonce, index, len(messages))
            if posted is not None and key in posted:
                log.info("%s is in channel %s already: not posting it again", key, channel.id)
                ts = posted[key]
            else:
                ts = await self._post(client, channel, message, key, nonce)
            ids.append(ts)
            if on_part is not None and index + 1 < len(messages):
                await on_part(list(ids))
        self.suspect.discard(nonce)
        return ids

    async def _client(self, channel: ChannelRecord) -> AsyncWebClient:
        try:
            return await self.client_for(channel.guild_id)
        except DeliveryError:
            raise
        except LookupError as err:
            raise DeliveryError(str(err), permanent=True) from None

    async def _posted_keys(self, client: AsyncWebClient, channel: ChannelRecord) -> dict[str, str]:
        """Delivery key -> ts of the recent messages that carry one."""
        try:
            resp = await asyncio.wait_for(
                client.conversations_history(
                    channel=channel.external_id, limit=HISTORY_LIMIT, include_all_metadata=True
                ),
                self.send_timeout,
            )
        except Exception as err:
            raise self._failure(err, channel, "reading the channel's history") from err
        found: dict[str, str] = {}
        for msg in resp.get("messages") or []:
            meta = msg.get("metadata") or {}
            if meta.get("event_type") != EVENT_TYPE:
                continue
            key = (meta.get("event_payload") or {}).get("key")
            if isinstance(key, str) and msg.get("ts"):
                found.setdefault(key, str(msg["ts"]))
        return found

    async def _post(
        self,
        client: AsyncWebClient,
        channel: ChannelRecord,
        message: SlackMessage,
        key: str,
        nonce: str,
    ) -> str:
        kwargs: dict[str, Any] = {
            "channel": channel.external_id,
            "text": message.text,
            "blocks": message.blocks,
            "unfurl_links": False,
            "unfurl_media": False,
            "metadata": {"event_type": EVENT_TYPE, "event_payload": {"key": key}},
        }
        try:
            resp = await asyncio.wait_for(client.chat_postMessage(**kwargs), self.send_timeout)
        except Exception as err:
            if _ambiguous(err):
                self.suspect.add(nonce)
            raise self._failure(err, channel, "posting") from err
        ts = resp.get("ts")
        if not ts:
            self.suspect.add(nonce)
            raise DeliveryError("Slack accepted the message without a ts", permanent=False)
        return str(ts)

    def _failure(self, err: BaseException, channel: ChannelRecord, doing: str) -> DeliveryError:
        if isinstance(err, SlackApiError):
            if pauses(err):
                return DeliveryError(pause_reason(err), permanent=True)
            code = error_code(err) or "error"
            status = status_of(err)
            level = logging.WARNING if status == 429 or status >= 500 else logging.ERROR
            log.log(
                level,
                "Slack answered %s %s %s in channel %s",
                status,
                code,
                doing,
                channel.external_id,
            )
            return DeliveryError(f"Slack answered {status} {code}", permanent=False)
        if isinstance(err, TimeoutError):
            return DeliveryError(
                f"Slack did not answer within {self.send_timeout:g} s", permanent=False
            )
        if isinstance(err, aiohttp.ClientError | OSError):
            return DeliveryError(f"connection to Slack failed: {err}", permanent=False)
        log.exception("unexpected error %s in channel %s", doing, channel.external_id)
        return DeliveryError(f"{type(err).__name__}: {err}", permanent=False)


def _ambiguous(err: BaseException) -> bool:
    """Slack may have posted the message (we cannot tell from the failure)."""
    if isinstance(err, SlackApiError):
        return status_of(err) >= 500
    return True  # a dropped connection, a timeout, anything unexpected
