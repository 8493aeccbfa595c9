"""The outbox: digests and instant alerts delivered at most once, confirmed, retried.

:meth:`Outbox.deliver` records a ``pending`` delivery keyed per channel (a key already
recorded means it was delivered or is on its way: nothing happens), hands the digest to
the platform's :class:`Sink`, and marks it ``sent`` only once the sink confirms (returns
message ids). Failures:

- transient (network, 5xx, rate limit): the delivery stays pending with ``attempts``
  counted; :meth:`Outbox.retry_pending` resends it later with exponential backoff and
  the *same nonce* (Discord's ``enforce_nonce`` drops a duplicate if the first attempt
  did arrive after all);
- permanent (403/404: the bot lost access, the channel is gone): the delivery is marked
  failed and the channel paused with the reason, shown by ``/status``. No retry storm:
  a paused channel gets nothing until someone with the manage permission resumes it
  (``/digest schedule``).

A digest counts as delivered, and ``channel.last_digest_at`` moves to its period end,
only after the sink confirmed it. (The next digest starts where the latest digest made for the
channel ended, pending or sent, so a digest waiting here is never repeated by the next
one: :meth:`bot.core.usecases.digests.Digests.period_start`.)

One send at a time per delivery: a delivery being sent (by :meth:`Outbox.deliver`, or by
a :meth:`Outbox.retry_pending` run: the scheduler's retry job every minute, the Discord
adapter's resend once connected) is *in flight*; every other path skips it until that
attempt ended, and a retry re-reads the delivery just before sending, so it never posts
what another attempt confirmed meanwhile. (Within one process: the Outbox is the single
sender of a database's deliveries.)
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import (
    Iterable,
    Iterator,
    Mapping,
)
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, Protocol

from bot.core.backoff import backoff_delay
from bot.core.clock import Clock
from bot.core.digest import Digest
from bot.core.ports import ChannelRecord, Delivery, Storage
from bot.core.telemetry import NULL_TELEMETRY, DeliveryOutcome, Telemetry
from bot.errors import BriefbotError, DeliveryError

log = logging.getLogger(__name__)

RETRY_BASE = timedelta(seconds=30)
RETRY_MAX = timedelta(hours=1)
#: after this many failed attempts a transient failure is given up (marked failed)
MAX_ATTEMPTS = 12


class Sink(Protocol):
    """Where a platform's deliveries go (a Discord channel, the console...)."""

    async def send(self, channel: ChannelRecord, digest: Digest, *, nonce: str) -> list[str]:
        """Post ``digest`` to ``channel``; return the platform's message ids once it is
        accepted. Raise DeliveryError(permanent=True) when the platform refuses for good
        (403, 404), DeliveryError(permanent=False) for anything worth retrying.

        A sink that posts a digest as several messages may also have ``send_parts(channel,
        digest, *, nonce, done, on_part)`` to resume a partial delivery: ``done`` holds
        the message ids of the parts confirmed by earlier attempts (skipped); ``on_part``
        is awaited with the ids so far after each confirmed part (the Outbox records
        them, so a retry after a failure or a restart posts only what is missing)."""
        ...


def alert_key(story_or_item_id: int) -> str:
    return f"alert:{story_or_item_id}"


def backoff(attempts: int) -> timedelta:
    """Wait before the next attempt after ``attempts`` failed ones: 30 s, 1 min, 2 min...
    capped at an hour."""
    seconds = backoff_delay(
        attempts, base=RETRY_BASE.total_seconds(), cap=RETRY_MAX.total_seconds()
    )
    return timedelta(seconds=seconds)


class Outbox:
    def __init__(self, storage: Storage, clock: Clock, sinks: Mapping[str, Sink]) -> None:
        self.storage = storage
        self.clock = clock
        #: the mapping is kept (not copied): adapters register sinks after start-up
        self.sinks = sinks
        # delivery id -> earliest next attempt (in memory: after a restart every pending
        # delivery is due at once, which is the "resend once at start-up")
        self._next_try: dict[int, datetime] = {}
        #: ids of the deliveries being sent right now (see :meth:`_claim`)
        self._in_flight: set[int] = set()
        #: told how every attempt ended (``briefbot run``: log line, metrics)
        self.telemetry: Telemetry = NULL_TELEMETRY

    def _report(self, channel_id: int, delivery: Delivery, outcome: str, **more: Any) -> None:
        self.telemetry.delivery(DeliveryOutcome(
            kind=delivery.kind, outcome=outcome, channel_id=channel_id,
            platform=str(more.pop("platform", "")), key=delivery.key, **more,
        ))  # fmt: skip

    def has_sink(self, platform: str) -> bool:
        return platform in self.sinks

    async def deliver(
        self,
        channel: ChannelRecord,
        kind: str,
        key: str,
        digest: Digest,
        *,
        item_ids: Iterable[int] = (),
    ) -> Delivery | None:
        """Record and send once. Returns the delivery as recorded after this attempt
        (status ``sent``, ``pending`` or ``failed``), or None when ``key`` was already
        delivered or pending in the channel, or the channel is paused."""
        if channel.paused_reason:
            log.info(
                "not delivering %s to paused channel %s: %s", key, channel.id, channel.paused_reason
            )
            return None
        delivery = await self.storage.create_delivery(
            channel.id, kind, key, digest.to_payload(), at=self.clock.now(), item_ids=item_ids
        )
        if delivery is None:
            log.debug("%s already delivered (or pending) in channel %s", key, channel.id)
            return None
        return await self._attempt(channel, delivery, digest)

    def in_flight(self, delivery_id: int) -> bool:
        """True while an attempt to send this delivery is under way."""
        return delivery_id in self._in_flight

    async def retry_pending(self, *, force: bool = False) -> int:
        """Resend pending deliveries whose backoff has passed (all of them with ``force``
        or right after a restart), with their original nonce. Returns how many were sent.
        A delivery being sent right now (by :meth:`deliver` or another run) is skipped."""
        now = self.clock.now()
        sent = 0
        for listed in await self.storage.pending_deliveries():
            due = self._next_try.get(listed.id)
            if not force and due is not None and now < due:
                continue
            with self._claim(listed.id) as mine:
                if not mine:  # being sent by deliver() or another retry
                    continue
                result = await self._retry_one(listed)
            if result is not None and result.status == "sent":
                sent += 1
        return sent

    async def _retry_one(self, listed: Delivery) -> Delivery | None:
        # The list was read before the earlier deliveries of this run were sent: read
        # this one again, now that it is claimed (an attempt that ended meanwhile may
        # have sent it, or confirmed some of its parts)
        delivery = await self.storage.get_delivery(listed.channel_id, listed.key)
        if delivery is None or delivery.status != "pending":
            return None
        try:
            channel = await self.storage.channel_by_id(delivery.channel_id)
        except BriefbotError as err:
            await self.storage.mark_failed(delivery.id, error=str(err), permanent=True)
            return None
        if channel.paused_reason:
            return None
        try:
            digest = Digest.from_payload(delivery.payload)
        except BriefbotError as err:
            # the error names the problem; a traceback of the payload check adds nothing
            log.error("delivery %s cannot be read back: %s", delivery.id, err)  # noqa: TRY400
            await self.storage.mark_failed(delivery.id, error=str(err), permanent=True)
            return None
        return await self._send(channel, delivery, digest)

    @contextlib.contextmanager
    def _claim(self, delivery_id: int) -> Iterator[bool]:
        """Mark a delivery in flight for the block; yields False (and claims nothing)
        if an attempt is under way already. Check and claim are one step (no await)."""
        if delivery_id in self._in_flight:
            yield False
            return
        self._in_flight.add(delivery_id)
        try:
            yield True
        finally:
            self._in_flight.discard(delivery_id)

    async def _attempt(
        self, channel: ChannelRecord, delivery: Delivery, digest: Digest
    ) -> Delivery | None:
        """Send ``delivery`` once now, unless an attempt is already under way (None)."""
        with self._claim(delivery.id) as mine:
            if not mine:
                log.debug("delivery %s is being sent already: not sending it twice", delivery.key)
                return None
            return await self._send(channel, delivery, digest)

    async def _send(self, channel: ChannelRecord, delivery: Delivery, digest: Digest) -> Delivery:
        sink = self.sinks.get(channel.platform)
        if sink is None:
            return await self._transient(
                delivery, f"no {channel.platform} connection to deliver through"
            )
        try:
            send_parts = getattr(sink, "send_parts", None)
            if send_parts is not None:

                async def progress(ids: list[str]) -> None:
                    await self.storage.record_progress(delivery.id, ids)

                message_ids = await send_parts(
                    channel,
                    digest,
                    nonce=delivery.nonce,
                    done=delivery.message_ids,
                    on_part=progress,
                )
            else:
                message_ids = await sink.send(channel, digest, nonce=delivery.nonce)
        except DeliveryError as err:
            if err.permanent:
                return await self._permanent(channel, delivery, str(err))
            return await self._transient(delivery, str(err))
        except Exception as err:  # a sink bug or an unexpected network error: retry later
            log.exception("sending %s to channel %s failed", delivery.key, channel.id)
            return await self._transient(delivery, f"{type(err).__name__}: {err}")
        now = self.clock.now()
        await self.storage.mark_sent(delivery.id, at=now, message_ids=message_ids)
        self._next_try.pop(delivery.id, None)
        if delivery.kind == "digest":
            last = channel.last_digest_at
            end = digest.period_end
            if last is None or end > last:
                await self.storage.set_last_digest_at(channel.id, end)
        log.info(
            "delivered %s to channel %s (%d messages)", delivery.key, channel.id, len(message_ids)
        )
        self._report(
            channel.id, delivery, "sent", platform=channel.platform, channel_name=channel.name,
            messages=len(message_ids), stories=digest.story_count, items=digest.item_count,
        )  # fmt: skip
        return _updated(delivery, status="sent", sent_at=now, message_ids=list(message_ids))

    async def _transient(self, delivery: Delivery, error: str) -> Delivery:
        attempts = delivery.attempts + 1
        give_up = attempts >= MAX_ATTEMPTS
        await self.storage.mark_failed(delivery.id, error=error, permanent=give_up)
        if give_up:
            self._next_try.pop(delivery.id, None)
            log.error("giving up delivery %s after %d attempts: %s", delivery.key, attempts, error)
            self._report(delivery.channel_id, delivery, "failed", error=error)
            return _updated(delivery, status="failed", attempts=attempts, last_error=error)
        self._next_try[delivery.id] = self.clock.now() + backoff(attempts)
        log.warning(
            "delivery %s failed (attempt %d, will retry): %s", delivery.key, attempts, error
        )
        self._report(delivery.channel_id, delivery, "retry", error=error)
        return _updated(delivery, attempts=attempts, last_error=error)

    async def _permanent(self, channel: ChannelRecord, delivery: Delivery, error: str) -> Delivery:
        await self.storage.mark_failed(delivery.id, error=error, permanent=True)
        self._next_try.pop(delivery.id, None)
        reason = f"delivery refused: {error}"
        await self.storage.set_paused(channel.id, reason)
        log.error("channel %s paused: %s", channel.id, reason)
        self._report(channel.id, delivery, "refused", platform=channel.platform, error=error)
        return _updated(delivery, status="failed", attempts=delivery.attempts + 1, last_error=error)


def _updated(delivery: Delivery, **changes: Any) -> Delivery:
    return replace(delivery, **changes)
