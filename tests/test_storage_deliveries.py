"""SqlStorage deliveries: created once per key, sent, failed, progress, alerted (every
backend: see storage_support)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, timedelta
from pathlib import Path

import pytest
from storage_support import A_URL, BACKENDS, T0, item, open_storage, setup_feeds

from bot.errors import NotFoundError
from bot.storage.sql import SqlStorage


@pytest.fixture(params=BACKENDS)
async def storage(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SqlStorage]:
    async with open_storage(request.param, tmp_path) as s:
        yield s


# -- deliveries ------------------------------------------------------------------------


async def test_deliveries_are_created_once(storage: SqlStorage) -> None:
    ch = await storage.get_channel("discord", "1")
    other = await storage.get_channel("discord", "2")
    payload = {"title": "Morning brief", "stories": [{"id": 1, "title": "习近平"}]}
    d = await storage.create_delivery(ch.id, "digest", "digest:2024-03-01", payload, at=T0)
    assert d is not None
    assert (d.channel_id, d.kind, d.key, d.payload, d.status) == (
        ch.id,
        "digest",
        "digest:2024-03-01",
        payload,
        "pending",
    )
    assert d.nonce.isdigit()
    assert len(d.nonce) == 18
    assert (d.attempts, d.last_error, d.message_ids, d.sent_at) == (0, None, [], None)
    assert d.created_at == T0
    assert d.created_at.tzinfo == UTC
    assert await storage.create_delivery(ch.id, "digest", "digest:2024-03-01", {}, at=T0) is None
    # same key in another channel is another delivery
    d2 = await storage.create_delivery(other.id, "digest", "digest:2024-03-01", {}, at=T0)
    assert d2 is not None
    assert d2.nonce != d.nonce
    assert await storage.get_delivery(ch.id, "digest:2024-03-01") == d
    assert await storage.get_delivery(ch.id, "nope") is None

    # transient failure: still pending, nonce unchanged
    await storage.mark_failed(d.id, error="HTTP 502", permanent=False)
    [pending] = await storage.pending_deliveries(ch.id)
    assert (pending.id, pending.nonce, pending.attempts, pending.last_error) == (
        d.id,
        d.nonce,
        1,
        "HTTP 502",
    )
    await storage.mark_sent(d.id, at=T0 + timedelta(minutes=1), message_ids=["111", "222"])
    sent = await storage.get_delivery(ch.id, "digest:2024-03-01")
    assert sent is not None
    assert (sent.status, sent.sent_at, sent.message_ids, sent.attempts, sent.nonce) == (
        "sent",
        T0 + timedelta(minutes=1),
        ["111", "222"],
        2,
        d.nonce,
    )
    assert await storage.pending_deliveries(ch.id) == []
    assert [p.id for p in await storage.pending_deliveries()] == [d2.id]
    await storage.mark_failed(d2.id, error="Missing Access", permanent=True)
    failed = await storage.get_delivery(other.id, "digest:2024-03-01")
    assert failed is not None
    assert failed.status == "failed"
    assert await storage.pending_deliveries() == []
    with pytest.raises(NotFoundError):
        await storage.mark_sent(999, at=T0, message_ids=[])


async def test_concurrent_create_delivery_yields_one(storage: SqlStorage) -> None:
    ch = await storage.get_channel("discord", "1")
    made = await asyncio.gather(
        *(storage.create_delivery(ch.id, "alert", "alert:1", {"n": n}, at=T0) for n in range(6))
    )
    assert len([d for d in made if d is not None]) == 1


async def test_alerted(storage: SqlStorage) -> None:
    ids = await setup_feeds(storage)
    ch = await storage.get_channel("discord", "1")
    other = await storage.get_channel("discord", "2")
    s = await storage.insert_items(
        ids[A_URL], [(item(n), [str(n)]) for n in range(3)], fetched_at=T0
    )
    await storage.create_delivery(ch.id, "alert", "alert:a", {}, at=T0, item_ids=[s[0].id, s[1].id])
    await storage.create_delivery(ch.id, "digest", "digest:x", {}, at=T0, item_ids=[s[2].id])
    await storage.create_delivery(other.id, "alert", "alert:b", {}, at=T0, item_ids=[s[2].id])
    assert await storage.alerted(ch.id, [x.id for x in s]) == {s[0].id, s[1].id}
    assert await storage.alerted(other.id, [x.id for x in s]) == {s[2].id}
    assert await storage.alerted(ch.id, []) == set()
