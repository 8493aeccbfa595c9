"""Deliveries: the outbox of digests and instant alerts, each key at most once per
channel, ``pending`` until the platform confirms it."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select, update

from bot.core.ports import Delivery, DeliveryKind, DeliveryStatus
from bot.errors import NotFoundError
from bot.storage.engine import StorageBase, as_utc, as_utc_opt
from bot.storage.queries import KEY_CHUNK, deliveries, delivery_items, to_delivery


class DeliveriesMixin(StorageBase):
    """The :class:`~bot.core.ports.DeliveryStore` part of :class:`~bot.storage.sql.SqlStorage`."""

    async def create_delivery(
        self,
        channel_id: int,
        kind: str,
        key: str,
        payload: dict[str, Any],
        *,
        at: datetime,
        item_ids: Iterable[int] = (),
    ) -> Delivery | None:
        """``item_ids``: the items the delivery carries (what ``alerted`` answers from)."""
        try:
            payload = json.loads(json.dumps(payload))
        except (TypeError, ValueError) as err:
            raise TypeError(f"delivery payload is not JSON-serialisable: {err}") from None
        stmt = (
            self._insert(deliveries)
            .values(
                channel_id=channel_id,
                kind=DeliveryKind(kind),
                key=key,
                payload=payload,
                status=DeliveryStatus.PENDING,
                nonce=_nonce(),
                attempts=0,
                message_ids=[],
                created_at=as_utc(at),
            )
            .on_conflict_do_nothing(index_elements=["channel_id", "key"])
            .returning(*deliveries.c)
        )
        ids = list(dict.fromkeys(item_ids))
        async with self._tx() as conn:
            row = (await conn.execute(stmt)).first()
            if row is None:
                return None
            if ids:
                await conn.execute(
                    insert(delivery_items),
                    [{"delivery_id": row.id, "item_id": i} for i in ids],
                )
        return to_delivery(row)

    async def get_delivery(self, channel_id: int, key: str) -> Delivery | None:
        stmt = select(deliveries).where(
            deliveries.c.channel_id == channel_id, deliveries.c.key == key
        )
        async with self._read() as conn:
            row = (await conn.execute(stmt)).first()
        return None if row is None else to_delivery(row)

    async def mark_sent(
        self, delivery_id: int, *, at: datetime, message_ids: Sequence[str]
    ) -> None:
        await self._update_delivery(
            delivery_id,
            status=DeliveryStatus.SENT,
            sent_at=as_utc(at),
            message_ids=[str(m) for m in message_ids],
            attempts=deliveries.c.attempts + 1,
        )

    async def mark_failed(self, delivery_id: int, *, error: str, permanent: bool) -> None:
        values: dict[str, Any] = {"last_error": error[:2000], "attempts": deliveries.c.attempts + 1}
        if permanent:
            values["status"] = DeliveryStatus.FAILED
        await self._update_delivery(delivery_id, **values)

    async def record_progress(self, delivery_id: int, message_ids: Sequence[str]) -> None:
        await self._update_delivery(delivery_id, message_ids=[str(m) for m in message_ids])

    async def _update_delivery(self, delivery_id: int, **values: Any) -> None:
        async with self._tx() as conn:
            result = await conn.execute(
                update(deliveries).where(deliveries.c.id == delivery_id).values(values)
            )
            if result.rowcount == 0:
                raise NotFoundError(f"There is no delivery #{delivery_id}.")

    async def pending_deliveries(self, channel_id: int | None = None) -> list[Delivery]:
        stmt = select(deliveries).where(deliveries.c.status == DeliveryStatus.PENDING)
        if channel_id is not None:
            stmt = stmt.where(deliveries.c.channel_id == channel_id)
        stmt = stmt.order_by(deliveries.c.created_at, deliveries.c.id)
        async with self._read() as conn:
            return [to_delivery(r) for r in (await conn.execute(stmt)).all()]

    async def last_sent_at(self, channel_id: int, kind: str) -> datetime | None:
        """When the channel's latest ``kind`` delivery was sent (None: never)."""
        stmt = select(func.max(deliveries.c.sent_at)).where(
            deliveries.c.channel_id == channel_id,
            deliveries.c.kind == kind,
            deliveries.c.status == DeliveryStatus.SENT,
        )
        async with self._read() as conn:
            value = (await conn.execute(stmt)).scalar_one_or_none()
        return as_utc_opt(value)

    async def alerted(self, channel_id: int, item_ids: Sequence[int]) -> set[int]:
        """Items carried by any ``alert`` delivery of the channel, whatever its status."""
        ids = list(dict.fromkeys(item_ids))
        found: set[int] = set()
        async with self._read() as conn:
            for i in range(0, len(ids), KEY_CHUNK):
                stmt = (
                    select(delivery_items.c.item_id)
                    .join(deliveries, deliveries.c.id == delivery_items.c.delivery_id)
                    .where(
                        deliveries.c.channel_id == channel_id,
                        deliveries.c.kind == DeliveryKind.ALERT,
                        delivery_items.c.item_id.in_(ids[i : i + KEY_CHUNK]),
                    )
                )
                found.update((await conn.execute(stmt)).scalars())
        return found


def _nonce() -> str:
    """18 random decimal digits: fits Discord's 25-character nonce, never starts with 0."""
    return str(10**17 + secrets.randbelow(9 * 10**17))
